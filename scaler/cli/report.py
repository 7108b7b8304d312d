"""`ebbtide report`: the finance report (report.html + costs.csv) from a replay or from live history.

    ebbtide report --policy POLICY.yaml --out DIR  SOURCE  [RANGE] [options]

SOURCE, one of:
  --csv FILE               replay a `ts,value` demand trace now (as `ebbtide replay`), then report
  --timeline FILE          a replay timeline (`ebbtide replay --timeline-out FILE`); add
                           --replay-json FILE (`ebbtide replay --json > FILE`) for its workload and notes
  --prometheus [--prometheus-url URL]
                           live history: what ran from kube-state-metrics and Ebbtide's metrics,
                           baselines replayed over the same demand (URL: flag, $EBBTIDE_PROMETHEUS_URL,
                           or the policy's prometheus.url)
RANGE: --start ISO --end ISO, or --event NAME (its last occurrence: event start to end + 14 days).
Writes DIR/report.html, DIR/costs.csv (and DIR/costs_by_event.csv). See docs/reports.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timedelta, timezone

from policies.errors import EbbtideError

EVENT_LOOKBACK = timedelta(days=400)
"""--event NAME finds the event's last occurrence that started within this long before now."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="finance report (report.html, costs.csv) from a replay or from Prometheus history",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 2)[1] if "\n\n" in __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="Ebbtide policy (prices, workloads, events)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: report.html, costs.csv")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", metavar="FILE", help="`ts,value` demand trace to replay")
    src.add_argument("--timeline", metavar="FILE", help="replay timeline CSV (ebbtide replay --timeline-out)")
    src.add_argument("--prometheus", action="store_true", help="read live history from Prometheus")
    p.add_argument("--replay-json", metavar="FILE", help="with --timeline: the JSON of `ebbtide replay --json`")
    p.add_argument("--prometheus-url", metavar="URL", help="with --prometheus: overrides the policy's URL")
    p.add_argument("--workload", metavar="NAME", help="workload of the policy (default: the first)")
    p.add_argument("--events", metavar="EVENTS.yaml", help="more events, added to the policy's")
    p.add_argument("--start", metavar="ISO", help="start of the report range")
    p.add_argument("--end", metavar="ISO", help="end of the report range")
    p.add_argument("--event", metavar="NAME", help="report on this event: its start to its end + 14 days")
    p.add_argument("--zone", default="UTC", metavar="ZONE", help="IANA zone the report's days are counted in "
                   "(default: UTC)")
    p.add_argument("--billing-zone", default="UTC", metavar="ZONE", help="zone of the CDN contract's billing "
                   "days and months (default: UTC)")
    p.add_argument("--transcoded-streams", type=float, metavar="N", help="live streams transcoded at once "
                   "(costs transcoding; default: not costed)")
    p.add_argument("--compute-realised", action="store_true", help="node scale-down is in place: count compute "
                   "savings as realised money, not potential")
    p.add_argument("--step", default="5m", metavar="DURATION", help="with --prometheus: resolution (default 5m)")
    return p


def _times(args) -> dict[str, datetime]:
    from scaler.cli.common import parse_time_range

    out = parse_time_range(args)
    if args.event and out:
        raise EbbtideError("--event sets the range itself: give either --event or --start/--end")
    return out


def event_range(events, name: str, now: datetime, after: timedelta,
                tz: str | None = None) -> tuple[datetime, datetime]:
    """The last occurrence of event `name` that started before `now` (within EVENT_LOOKBACK):
    (its start, its end + `after`), a yearly one on its local dates in the calendar zone `tz`.
    Pure: `now` is passed in."""
    from policies.events import expand_events

    known = sorted({e.name for e in events})
    if name not in known:
        raise EbbtideError(f"--event {name!r}: no such event; the calendar has: {', '.join(known) or 'none'}")
    occ = [e for e in expand_events([e for e in events if e.name == name], now - EVENT_LOOKBACK, now, tz)
           if e.start <= now]
    if not occ:
        raise EbbtideError(f"--event {name!r}: no occurrence started in the {EVENT_LOOKBACK.days} days before now")
    last = max(occ, key=lambda e: e.start)
    return last.start, last.end + after


def _zone(name: str, flag: str) -> str:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise EbbtideError(f"{flag}: unknown IANA time zone {name!r} (e.g. UTC, Asia/Shanghai)") from None
    return name


def _progress(enabled: bool):
    """A rich progress bar on stderr (a no-op context and callback when not a terminal)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                        TimeElapsedColumn(), TimeRemainingColumn(), transient=True, console=Console(file=sys.stderr))
    task = progress.add_task("replay", total=1.0)
    return progress, lambda f: progress.update(task, completed=f)


def run(args) -> int:
    import json
    import math

    import pandas as pd

    from policies.loading import load_policy
    from policies.units import parse_duration
    from scaler.reporting import EBB_AFTER, RecordingPlanner, build_report, from_prometheus, from_replay, write_report
    from scaler.reporting.model import video_quality_sentence

    times = _times(args)
    zone = _zone(args.zone, "--zone")
    billing_zone = _zone(args.billing_zone, "--billing-zone")
    if args.replay_json and not args.timeline:
        raise EbbtideError("--replay-json needs --timeline FILE: the JSON holds the summary, the timeline the "
                           "numbers (write it with `ebbtide replay --timeline-out FILE`)")
    if args.prometheus_url and not args.prometheus:
        raise EbbtideError("--prometheus-url needs --prometheus")
    if args.transcoded_streams is not None and not (math.isfinite(args.transcoded_streams)
                                                    and args.transcoded_streams >= 0):
        raise EbbtideError(f"--transcoded-streams must be a finite number >= 0, got {args.transcoded_streams:g}")
    if not args.out.strip():
        raise EbbtideError("--out: empty; give the folder to write report.html and costs.csv in (e.g. out/report)")
    policy = load_policy(args.policy)
    from scaler.cli.common import load_extra_events

    extra = load_extra_events(args.events, policy, args.policy)
    calendar = list(policy.events) + extra
    if args.workload is not None:
        try:
            policy.workload(args.workload)
        except KeyError:
            raise EbbtideError(f"unknown workload {args.workload!r}; the policy has: "
                               f"{', '.join(w.name for w in policy.workloads)}") from None
    if args.event:
        now = datetime.now(timezone.utc)  # read once; everything below is given `now`
        tz = policy.workload(args.workload or policy.workloads[0].name).forecast.calendar_tz
        times["start"], times["end"] = event_range(calendar, args.event, times.get("end", now), EBB_AFTER, tz)
    command = "ebbtide report " + _reconstruct(args)
    common = dict(zone=zone, billing_zone=billing_zone, compute_realised=args.compute_realised,
                  transcoded_streams=args.transcoded_streams, focus_event=args.event, command=command)
    clip = dict(start=times.get("start"), end=times.get("end"))  # the range asked for; rows are clipped to it
    show = sys.stderr.isatty()

    if args.csv:
        from forecaster.csvio import read_series_csv
        from scaler.replay import replay

        series = read_series_csv(args.csv)
        recorder = RecordingPlanner()
        ctx, cb = _progress(show)
        with ctx:
            result = replay(series, policy, args.workload, extra_events=extra, start=times.get("start"),
                            end=times.get("end"), planner=recorder, on_progress=cb)
        inp = from_replay(result, policy, extra_events=extra, recorder=recorder,
                          source=f"simulated replay of {args.csv} (demand trace) with Ebbtide's forecaster and "
                                 f"planner", **common, **clip)
    elif args.timeline:
        from types import SimpleNamespace

        frame = read_timeline(args.timeline)
        summary: dict = {}
        if args.replay_json:
            try:
                with open(args.replay_json, encoding="utf-8") as f:
                    summary = json.load(f)
            except (OSError, ValueError) as exc:
                raise EbbtideError(f"--replay-json {args.replay_json}: cannot read: {exc}") from None
            _check_replay_json(summary, frame, args)
        name = args.workload or summary.get("workload") or policy.workloads[0].name
        if name not in {w.name for w in policy.workloads}:
            raise EbbtideError(f"--replay-json {args.replay_json}: workload {name!r} is not in the policy "
                               f"{args.policy} ({', '.join(w.name for w in policy.workloads)}); give --workload")
        ts = pd.to_datetime(frame["ts"], utc=True)
        # the interval is the whole timeline's spacing: a range of one row (one hour of an hourly
        # replay) is still a report
        step = (ts.iloc[-1] - ts.iloc[-2]).to_pytimedelta() if len(ts) > 1 else None
        if times:
            mask = pd.Series(True, index=frame.index)
            if "start" in times:  # rows overlapping the range; the report clips the first to its start
                row_end = ts.shift(-1).fillna(ts.iloc[-1] + (step or pd.Timedelta(0)))
                mask &= row_end > pd.Timestamp(times["start"])
            if "end" in times:
                mask &= ts < pd.Timestamp(times["end"])
            frame = frame[mask.to_numpy()]
        if len(frame) < (1 if step is not None else 2):
            a = args.start or (times["start"].isoformat() if "start" in times else "its start")
            b = args.end or (times["end"].isoformat() if "end" in times else "its end")
            span = f" between {a} and {b}{f' (event {args.event})' if args.event else ''}" if times else ""
            need = ("one interval" if step is not None else
                    "two intervals (the interval is the rows' spacing; this timeline has one row)")
            raise EbbtideError(f"--timeline {args.timeline}: {len(frame)} row(s){span}; a report needs at least "
                               f"{need}")
        notes = tuple(summary.get("notes", ()))
        if not args.workload and not summary.get("workload") and len(policy.workloads) > 1:
            notes += (f"no --workload given: the timeline is costed as the policy's first workload, {name!r} "
                      f"(its pod requests and target)",)
        # the replay's own figures (peak pods, demand unserved at every tick) over its span, if given
        result = SimpleNamespace(workload=name, timeline=frame, notes=notes, strategies=summary.get("strategies"),
                                 start=summary.get("start"), end=summary.get("end"))
        inp = from_replay(result, policy, extra_events=extra,
                          source=f"replay timeline {args.timeline} (simulated with Ebbtide's forecaster and planner)",
                          step=step, **common, **clip)
    else:
        from scaler.loop import prometheus_source, resolve_prometheus_url

        if "start" not in times or "end" not in times:
            raise EbbtideError("--prometheus needs a range: --start ISO --end ISO, or --event NAME")
        try:
            step = parse_duration(args.step)
        except ValueError as exc:
            raise EbbtideError(f"--step: {exc}") from None
        source = prometheus_source(policy.prometheus, resolve_prometheus_url(policy, args.prometheus_url))
        ctx, cb = _progress(show)
        with ctx:
            inp = from_prometheus(source, policy, args.workload, times["start"], times["end"], step=step,
                                  extra_events=extra, on_progress=cb, **common)
    report = build_report(inp)
    files = write_report(report, args.out)
    print(report.headline.text)
    video = video_quality_sentence(report)
    if video:
        print(video)
    for p in (files.html, files.csv, files.events_csv):
        if p is not None:
            print(f"wrote {p}")
    return 0


TIMELINE_COUNTS = ("replicas_", "ready_")
"""Prefixes of the timeline columns that must hold a finite pod count >= 0 on every row."""
TIMELINE_NUMBERS = (*TIMELINE_COUNTS, "cap_", "demand", "forecast_trusted")
"""Prefixes of the timeline columns read as numbers (empty: unknown, e.g. a trace gap's demand)."""


def read_timeline(path: str):
    """A replay timeline CSV (`ebbtide replay --timeline-out`) as a DataFrame, checked: a `ts`
    column of ISO 8601 times, and pod counts (replicas_*, ready_*) and the other numeric columns
    numbers. Errors name the file, the line and the column (EbbtideError)."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise EbbtideError(f"--timeline {path}: cannot read: {exc}") from None
    if "ts" not in frame.columns:
        raise EbbtideError(f"--timeline {path}: no `ts` column (columns: {', '.join(map(str, frame.columns))}); "
                           f"write it with `ebbtide replay --timeline-out FILE`")
    ts = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="ISO8601")
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise EbbtideError(f"--timeline {path}:{i + 2}: ts {frame['ts'].iat[i]!r} is not an ISO 8601 time")
    steps = np.diff(pd.DatetimeIndex(ts).as_unit("ns").asi8)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise EbbtideError(f"--timeline {path}:{i + 2}: ts {frame['ts'].iat[i]!r} is not after the row before it "
                           f"({frame['ts'].iat[i - 1]!r}); rows must be in time order, one per interval")
    if len(steps) and (steps != steps[0]).any():
        # Each row's values hold over its interval: a missing row would be costed as the row before
        # it (a saving nobody measured), and the interval length is read from the spacing.
        i = int(np.flatnonzero(steps != steps[0])[0]) + 1
        gap, every = pd.Timedelta(int(steps[i - 1]), "ns"), pd.Timedelta(int(steps[0]), "ns")
        raise EbbtideError(f"--timeline {path}:{i + 2}: ts {frame['ts'].iat[i]!r} is {gap} after the row before it, "
                           f"where the rows before are {every} apart: a row is missing or extra (a replay timeline "
                           f"has one row per interval); write it again with `ebbtide replay --timeline-out FILE`")
    need = ["demand", *(f"replicas_{s}" for s in ("ebbtide", "hpa", "static"))]
    absent = [c for c in need if c not in frame.columns]
    if absent:
        raise EbbtideError(f"--timeline {path}: no {', '.join(f'`{c}`' for c in absent)} column (columns: "
                           f"{', '.join(map(str, frame.columns))}); write it with `ebbtide replay --timeline-out FILE`")
    out = {"ts": frame["ts"]}
    for col in frame.columns.drop("ts"):
        if not str(col).startswith(TIMELINE_NUMBERS):
            out[col] = frame[col]
            continue
        text = frame[col].str.strip()
        values = pd.to_numeric(text.replace("", None), errors="coerce").astype(float)
        counts = str(col).startswith(TIMELINE_COUNTS)
        # Pod counts on every row; demand and caps finite and >= 0 where given (empty: unknown).
        sane = np.isfinite(values) & (values >= 0)
        given_bad = values.notna() & ~sane & (col != "forecast_trusted")
        bad = (values.isna() & (text != "")) | (~sane if counts else given_bad)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            want = "a pod count >= 0" if counts else "a finite number >= 0 (empty: unknown)"
            raise EbbtideError(f"--timeline {path}:{i + 2}: {col} {frame[col].iat[i]!r} is not {want}")
        out[col] = values
    return pd.DataFrame(out)


def _check_replay_json(summary, frame, args) -> None:
    """--replay-json must be the `ebbtide replay --json` object of the same run as --timeline:
    its workload (when --workload is given) and its start and end (the timeline's first row and
    the end of its last interval) agree, and its notes are a list of texts."""
    import pandas as pd

    where = f"--replay-json {args.replay_json}"
    if not isinstance(summary, dict):
        raise EbbtideError(f"{where}: not the JSON object `ebbtide replay --json` prints")
    notes = summary.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise EbbtideError(f"{where}: `notes` must be a list of texts, as `ebbtide replay --json` writes it")
    if args.workload and summary.get("workload") not in (None, args.workload):
        raise EbbtideError(f"{where}: a replay of workload {summary['workload']!r}, not --workload {args.workload!r}: "
                           f"give the JSON of the run that wrote --timeline {args.timeline}")
    ts = pd.to_datetime(frame["ts"], utc=True)
    if len(ts) < 2:
        return
    span = (ts.iloc[0], ts.iloc[-1] + (ts.iloc[-1] - ts.iloc[-2]))
    for key, at in zip(("start", "end"), span):
        if summary.get(key) is None:
            continue
        try:
            said = pd.Timestamp(summary[key])
            said = said.tz_convert("UTC") if said.tzinfo else said.tz_localize("UTC")
        except (ValueError, TypeError):
            raise EbbtideError(f"{where}: `{key}` {summary[key]!r} is not an ISO 8601 time") from None
        if abs(said - at) >= (ts.iloc[-1] - ts.iloc[-2]):
            raise EbbtideError(f"{where}: its replay {key}s at {said.isoformat()}, the timeline {args.timeline} at "
                               f"{at.isoformat()}: give the JSON of the run that wrote the timeline")


def _reconstruct(args) -> str:
    """The command line from parsed arguments (when called in-process, e.g. from tests)."""
    parts = []
    for flag in ("policy", "out", "csv", "timeline", "replay_json", "prometheus_url", "workload", "events",
                 "start", "end", "event", "zone", "billing_zone", "transcoded_streams", "step"):
        v = getattr(args, flag, None)
        if v is not None and not (flag in ("zone", "billing_zone") and v == "UTC") and not (flag == "step" and v == "5m"):
            parts.append(f"--{flag.replace('_', '-')} {shlex.quote(str(v))}")
    for flag in ("prometheus", "compute_realised"):
        if getattr(args, flag, False):
            parts.append(f"--{flag.replace('_', '-')}")
    return " ".join(parts)
