"""`ebbtide replay`: Ebbtide, a plain HPA and the war-state baseline through a recorded trace.

    ebbtide replay --csv FILE --policy POLICY.yaml [--workload NAME] [--events EVENTS.yaml]
                   [--start ISO] [--end ISO] [--timeline-out OUT.csv] [--json]

The trace's value is the workload's demand (the unit of `demand.per_replica`). The same
forecaster and planner as production run in simulated time (tick and refit interval from the
policy) on a simulated cluster where new pods are ready after `pod_startup`; see docs/replay.md.
OUT.csv: `ts,demand,replicas_ebbtide,replicas_hpa,replicas_static,ready_ebbtide,ready_hpa,
ready_static[,cap_<tier>_kbps...],forecast_trusted`, one row per trace interval (time-weighted
means). `--json` prints the summary per strategy, per post-event window, and the wall time.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path

from policies.errors import EbbtideError


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "replay",
        help="simulate Ebbtide, an HPA and war-state capacity over a ts,value trace",
        description=__doc__.split("\n\n", 1)[0],
    )
    p.add_argument("--csv", required=True, metavar="FILE", help="`ts,value` CSV; value = demand")
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="Ebbtide policy")
    p.add_argument("--workload", metavar="NAME", help="workload of the policy to replay (default: the first)")
    p.add_argument("--events", metavar="EVENTS.yaml", help="more events, added to the policy's")
    p.add_argument("--start", metavar="ISO", help="start of the simulated range (default: the trace's start); "
                   "earlier rows still serve as history")
    p.add_argument("--end", metavar="ISO", help="end of the simulated range (default: the trace's end)")
    p.add_argument("--timeline-out", metavar="OUT.csv", help="write the timeline CSV")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    p.add_argument("--demand-shape", choices=("step", "linear"), default="step",
                   help="how demand runs between trace points, for every strategy: step (each value held over "
                        "its interval, the default) or linear (lines between interval midpoints: no jump at each "
                        "interval boundary)")
    return p


def run(args) -> int:
    from forecaster.csvio import read_series_csv
    from policies.loading import load_policy
    from scaler.cli.common import load_extra_events, parse_time_range
    from scaler.replay import ReplayOptions, replay

    times = parse_time_range(args)
    policy = load_policy(args.policy)
    series = read_series_csv(args.csv)
    events = load_extra_events(args.events, policy, args.policy)
    if args.timeline_out and not Path(args.timeline_out).resolve().parent.is_dir():
        raise EbbtideError(f"--timeline-out {args.timeline_out}: folder does not exist")

    run_replay = functools.partial(replay, series, policy, args.workload, extra_events=events,
                                   start=times.get("start"), end=times.get("end"),
                                   options=ReplayOptions(demand_shape=args.demand_shape))
    if sys.stderr.isatty():  # a live bar on the terminal (stdout, where --json goes, stays clean)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        progress = Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TimeElapsedColumn(), TimeRemainingColumn(), transient=True, console=Console(stderr=True))
        with progress:
            task = progress.add_task("replay", total=1.0)
            result = run_replay(on_progress=lambda f: progress.update(task, completed=f))
    else:  # a log, a CI job: one plain line per tenth of the replay on stderr
        result = run_replay(on_progress=_plain_progress(time.monotonic()))

    if args.timeline_out:
        try:
            result.timeline.to_csv(args.timeline_out, index=False, float_format="%.10g")
        except OSError as exc:
            raise EbbtideError(f"--timeline-out {args.timeline_out}: cannot write: {exc}") from None
    report = {"file": str(args.csv), "policy": str(args.policy), **result.to_dict()}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_tables(report)
    return 0


def _plain_progress(t0: float, parts: int = 10):
    """on_progress callback printing `replay: 30% done, 42 s elapsed` to stderr once per 1/`parts`
    of the way (the first call at or past each tenth), t0 being time.monotonic() at the start."""
    shown = [0]

    def report(fraction: float) -> None:
        part = math.floor(round(fraction * parts, 9))
        if part > shown[0]:
            shown[0] = part
            print(f"replay: {100 * fraction:.0f}% done, {time.monotonic() - t0:.0f} s elapsed",
                  file=sys.stderr, flush=True)

    return report


def print_tables(report: dict) -> None:
    """The summary as rich tables: the whole range, each event itself (its ramp: pre-scaling), then
    each post-event window."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    sim = report["simulation"]
    # One line each, never wrapped (logs are grepped), and a path's [brackets] printed as written.
    console.print(f"[bold]{escape(report['file'])}[/] workload [bold]{escape(report['workload'])}[/]: "
                  f"{report['start']} .. {report['end']}, {sim['ticks']} ticks, {sim['refits']} refits, "
                  f"forecast trusted on {100 * (sim['trusted_tick_share'] or 0):.0f}% of ticks, "
                  f"wall {sim['wall_s']:.1f} s", soft_wrap=True)
    sections = [("whole replay", report["strategies"])]
    sections += [(f"during {w['event']} ({w['start']} .. {w['end']})", w["strategies"]) for w in report["during"]]
    sections += [(f"after {w['event']} ({w['start']} .. {w['end']})", w["strategies"]) for w in report["windows"]]
    for title, strategies in sections:
        table = Table(title=escape(title), show_header=True, header_style="bold")
        for col in ("strategy", "replica-h", "vs war", "vs HPA", f"cost {report['currency']}",
                    "under %", "under vs HPA", "under min", "actions"):
            table.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=True)
        war, hpa = strategies["static"], strategies["hpa"]
        for name, label in (("ebbtide", "ebbtide"), ("hpa", "hpa"), ("static", "war state")):
            s = strategies[name]
            table.add_row(label, f"{s['replica_hours']:.1f}", _ratio(s["replica_hours"], war["replica_hours"]),
                          _ratio(s["replica_hours"], hpa["replica_hours"]), f"{s['compute_cost']:.2f}",
                          _pct(s["under_provisioned_share"]),
                          _ratio(s["under_provisioned_share"], hpa["under_provisioned_share"]),
                          f"{s['under_provisioned_minutes']:.1f}", str(s["scaling_actions"]))
        console.print(table)
    for note in report["notes"]:
        console.print(f"note: {escape(note)}", soft_wrap=True)


def _ratio(a, b) -> str:
    if a is None or b is None:
        return "-"
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2f}x"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.3f}%"
