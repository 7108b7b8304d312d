"""Writing a computed Report: costs.csv, costs_by_event.csv and report.html (jinja2, one
self-contained file: charts inline as base64 PNG, no scripts, no network)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from policies.errors import EbbtideError
from scaler.costing import ComponentCosts, csv_text, currency_quantum
from scaler.reporting.model import (
    COMPONENT_NAMES,
    Report,
    event_label,
    format_money,
    savings_sentence,
    strategy_label,
)

TEMPLATE = "report.html.j2"
NOT_COSTED = "not costed"
"""What a cell of a component that was not costed shows (Report.not_costed), instead of 0.00."""


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by write_report."""

    html: Path
    csv: Path
    events_csv: Path | None


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def _share(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.3f}%"


def context(report: Report, charts: list) -> dict:
    """Everything the template shows, as display strings (the template only lays it out)."""
    inp = report.input
    cur = report.currency
    m = lambda d: format_money(d, cur)  # noqa: E731
    zone = inp.zone
    local = lambda t: pd.Timestamp(t).tz_convert(zone)  # noqa: E731
    strategies = list(inp.strategies)

    skipped = report.not_costed

    def cost_cells(c: ComponentCosts) -> dict[str, str | None]:
        """Shown amounts and exact values (`*_raw`, data-value); a component not costed reads
        NOT_COSTED and has no value (None), never 0.00."""
        out: dict[str, str | None] = {"total": m(c.total), "total_raw": format(c.total, "f")}
        for k in ("compute", "egress", "transcoding"):
            out[k] = NOT_COSTED if k in skipped else m(getattr(c, k))
            out[f"{k}_raw"] = None if k in skipped else format(getattr(c, k), "f")
        return out

    totals = report.totals()
    overview = [{"key": s, "label": strategy_label(s), "pod_hours": f"{report.quality[s].pod_hours:,.0f}",
                 **cost_cells(totals[s])} for s in strategies]
    ebb = report.headline.window
    ebb_rows = []
    if ebb is not None:
        for s in strategies:
            ebb_rows.append({"key": s, "label": strategy_label(s),
                             **cost_cells(report.windowed[s].by_period()[ebb.name])})
    saving_rows = []
    for b in report.baselines:
        sv = report.savings_daily[b]
        saving_rows.append({"key": b, "label": strategy_label(b), **cost_cells(sv.total),
                            "pct": _pct(float(sv.total.total / sv.baseline.total * 100)
                                        if sv.baseline.total else None),
                            "statement": savings_sentence(sv, not_costed=skipped)})
    window_rows = []
    for w in report.windows:
        per = {s: report.windowed[s].by_period()[w.name].total for s in strategies}
        window_rows.append({
            "label": w.label,
            "range": f"{local(w.start):%b %d %H:%M} - {local(w.end):%b %d %H:%M}",
            "costs": [m(per[s]) for s in strategies],
            "saved": [m(per[b] - per[report.ran]) for b in report.baselines],
        })
    day_rows = []
    by_day = {s: report.daily[s].by_period() for s in strategies}
    for p in report.daily[report.ran].periods:
        event_days = [event_label(w.event) for w in report.windows
                      if w.kind == "event" and w.start < p.end and w.end > p.start]
        day_rows.append({
            "date": f"{p.date:%a %b %d}",
            "note": ", ".join(dict.fromkeys(event_days)),
            "costs": [m(by_day[s][p.label].total) for s in strategies],
            "saved": [m(report.savings_daily[b].by_period[p.label].total) for b in report.baselines],
        })
    objects = sorted({k for s in strategies for k in report.daily[s].by_workload()})
    object_rows = []
    for k in objects:
        ns, kind, name = k
        object_rows.append({
            "what": {"CDN": "CDN delivery (egress)", "Transcoding": "Transcoding"}.get(kind, f"{kind} {ns}/{name}"),
            "namespace": ns or "-", "kind": kind, "name": name,
            "costs": [m(report.daily[s].by_workload().get(k, ComponentCosts()).total) for s in strategies],
        })
    quality_rows = [{"label": strategy_label(s), "pod_hours": f"{q.pod_hours:,.0f}",
                     "peak": f"{q.peak_pods:,.0f}", "unserved": _share(q.unserved_share),
                     "minutes": "-" if q.unserved_minutes is None else f"{q.unserved_minutes:,.0f}"}
                    for s, q in report.quality.items()]
    bitrate = inp.bitrate
    floors = {t.name: t.hd_floor for t in bitrate.tiers} if bitrate is not None else {}
    vq = report.video_quality
    video_rows = [{"tier": q.tier, "floor": floors.get(q.tier, "-"), "viewer_hours": f"{q.viewer_hours:,.0f}",
                   "rungs": [f"{100 * share:.1f}%" for _, share in q.by_rung],
                   "between": f"{100 * q.between:.1f}%", "unknown": f"{100 * q.unknown:.1f}%"} for q in vq]
    pct1 = lambda v: _pct(100 * v if v is not None and v == v else None)  # noqa: E731
    accuracy_rows = [{"label": a.label, "wape": pct1(a.metrics.wape), "coverage": pct1(a.metrics.coverage),
                      "under": pct1(a.metrics.under_forecast), "points": f"{a.metrics.n_points:,}"}
                     for a in report.accuracy]
    ps = inp.plan_stats
    cost = inp.cost
    res = inp.workload.resources
    prices = [
        ("CPU", f"{_price(cost.cpu_core_hour, cur)} per core-hour requested"),
        ("Memory", f"{_price(cost.memory_gib_hour, cur)} per GiB-hour requested"),
    ]
    billing_text = {
        "per_gb": f"{_price(cost.egress_per_gb, cur)} per GB delivered",
        "daily_peak_bandwidth": f"{_price(cost.egress_per_mbps_day, cur)} per Mbit/s of each day's peak "
                                f"(5-minute averages, days in {report.daily[report.ran].billing_zone})",
        "monthly_p95": f"{_price(cost.egress_per_mbps_month, cur)} per Mbit/s of the month's 95th percentile "
                       f"(5-minute averages; a part month is prorated)",
    }[report.daily[report.ran].billing]
    prices.append(("CDN egress", f"not costed: {skipped['egress']} (price in the policy: {billing_text})"
                   if "egress" in skipped else billing_text))
    streams = (f"not costed: {skipped['transcoding']}" if "transcoding" in skipped
               else f"{_price(cost.transcoding_per_rung_hour, cur)} per rung-hour per stream, "
                    f"{inp.transcoded_streams:,g} streams transcoded at once")
    prices.append(("Transcoding", streams))
    usage = [n for k, n in COMPONENT_NAMES.items() if k not in skipped]
    return {
        "title": f"Cost report: {inp.workload.name}"
                 + (f" around {event_label(ebb.event)}" if ebb is not None else ""),
        "headline": report.headline.text,
        "source": inp.source,
        "range": f"{local(report.start):%Y-%m-%d %H:%M} to {local(report.end):%Y-%m-%d %H:%M} ({zone})",
        "currency": cur,
        "strategies": [{"key": s, "label": strategy_label(s)} for s in strategies],
        "ran_label": strategy_label(report.ran),
        "baselines": [{"key": b, "label": strategy_label(b)} for b in report.baselines],
        "overview": overview,
        "ebb": None if ebb is None else {"label": ebb.label,
                                         "range": f"{local(ebb.start):%b %d %H:%M} - {local(ebb.end):%b %d %H:%M}"},
        "ebb_rows": ebb_rows,
        "savings": saving_rows,
        "compute_realised": inp.compute_realised,
        "minor_unit": f"{format(currency_quantum(cur), 'f')} {cur}",
        "not_costed": [f"{n} ({skipped[k]})" for k, n in COMPONENT_NAMES.items() if k in skipped],
        "billed_by_use": " and ".join(usage),
        "not_costed_names": " and ".join(n for k, n in COMPONENT_NAMES.items() if k in skipped),
        "quality_measured": report.quality_measured,
        "windows": window_rows,
        "days": day_rows,
        "objects": object_rows,
        "quality": quality_rows,
        "accuracy": accuracy_rows,
        "video_quality": video_rows,
        "video_ladder": [r.name for r in bitrate.ladder] if bitrate is not None else [],
        "video_between": any(q.between > 0 for q in vq),
        "video_unknown": any(q.unknown > 0 for q in vq),
        "plans": None if ps is None else {
            "ticks": f"{ps.ticks:,}", "changes": f"{ps.changes:,}", "guard_ticks": f"{ps.guard_ticks:,}",
            "guard_interventions": f"{ps.guard_interventions:,}",
            "trusted": _pct(100 * ps.trusted_share if ps.trusted_share is not None else None),
            "simulated": inp.strategies[0] == "ebbtide"},
        "charts": charts,
        "workload": {"name": inp.workload.name, "target": f"{inp.workload.target.kind} "
                     f"{inp.workload.target.namespace}/{inp.workload.target.name}",
                     "cpu": f"{res.cpu_cores:g}", "mem": f"{res.memory_gib:g}",
                     "per_replica": f"{inp.workload.demand.per_replica:g}", "query": inp.workload.demand.query},
        "prices": prices,
        "zone": zone,
        "has_windows": bool(report.windows),
        "ebb_days": f"{inp.ebb_after.total_seconds() / 86400:g}",
        "step_min": f"{report.step.total_seconds() / 60:g}",
        "command": inp.command,
        "notes": list(report.notes),
    }


def _price(value: float, currency: str) -> str:
    d = Decimal(str(value))
    text = format(d, "f") if -d.as_tuple().exponent > 2 else f"{d:.2f}"
    return f"${text}" if currency == "USD" else f"{currency} {text}"


def render_html(report: Report, charts: list | None = None) -> str:
    """report.html as a string: one self-contained document."""
    import jinja2

    from scaler.reporting.charts import all_charts

    env = jinja2.Environment(loader=jinja2.PackageLoader("scaler", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    charts = all_charts(report) if charts is None else charts
    return env.get_template(TEMPLATE).render(**context(report, charts))


def write_report(report: Report, out: str | Path) -> ReportFiles:
    """DIR/report.html, DIR/costs.csv (daily lines of every strategy) and, when the report has
    event windows, DIR/costs_by_event.csv; without them, one an earlier report left in DIR is
    removed (a reader would take it for this report's).

    Everything is rendered in memory first and each file is written to a temporary name and then
    renamed over the old one, so a failure (a chart that cannot be drawn, a full disk) never
    leaves new CSVs next to an earlier report.html: DIR holds the earlier report or the new one."""
    out = Path(out)
    try:
        html_text = render_html(report)
    except (ValueError, RuntimeError, OverflowError) as exc:  # matplotlib's drawing errors
        raise EbbtideError(f"report: cannot draw the report's charts: {type(exc).__name__}: {exc}; "
                           f"nothing was written to {out}") from None
    texts = {"costs.csv": csv_text(report.rows())[0], "report.html": html_text}
    if report.windows:
        texts["costs_by_event.csv"] = csv_text(report.window_rows())[0]
    temps: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            tmp = out / f".{name}.tmp"
            temps.append(tmp)
            tmp.write_text(text, encoding="utf-8", newline="")
        for name in texts:
            os.replace(out / f".{name}.tmp", out / name)
        if not report.windows:
            (out / "costs_by_event.csv").unlink(missing_ok=True)
    except OSError as exc:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise EbbtideError(f"--out {out}: cannot write the report: {exc}") from None
    return ReportFiles(out / "report.html", out / "costs.csv",
                       out / "costs_by_event.csv" if report.windows else None)
