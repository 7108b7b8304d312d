"""The report's charts: matplotlib (Agg, no display, no pyplot state) rendered to PNG bytes,
embedded in the HTML as base64 `data:` URIs so the report is one self-contained file.

Each function takes a computed Report and returns a Chart (title, caption in plain language,
PNG bytes), or None when the data for it is absent. Times are drawn in the report's zone.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaler.reporting.model import Report, baseline_phrase, event_label, strategy_label

COLORS = {"ebbtide": "#1f77b4", "actual": "#1f77b4", "hpa": "#ff7f0e", "static": "#7f7f7f"}
TIER_COLORS = ["#2ca02c", "#9467bd", "#d62728", "#8c564b", "#17becf"]
WIDTH_IN, HEIGHT_IN, DPI = 11.0, 3.6, 100


@dataclass(frozen=True)
class Chart:
    """One chart: `key` (HTML id), title, a caption a finance reader follows, PNG bytes."""

    key: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _local(report: Report) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(report.input.timeline["ts"], utc=True))
    return idx.tz_convert(report.input.zone).tz_localize(None)


def _local_t(report: Report, t) -> pd.Timestamp:
    return pd.Timestamp(t).tz_convert(report.input.zone).tz_localize(None)


def _decorate(ax, report: Report, ylabel: str) -> None:
    """Shade event windows, label the axes, format dates."""
    import matplotlib.dates as mdates

    for w in report.windows:
        if w.kind == "event":
            ax.axvspan(_local_t(report, w.start), _local_t(report, w.end), color="gold", alpha=0.25, lw=0)
    ax.set_xlim(_local_t(report, report.start), _local_t(report, report.end))
    ax.set_ylabel(ylabel)
    ax.set_xlabel(f"local time ({report.input.zone}); yellow = sale or live event")
    short = pd.Timestamp(report.end) - pd.Timestamp(report.start) <= pd.Timedelta(days=2)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d %H:%M" if short else "%b %d"))
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)


def demand_chart(report: Report) -> Chart:
    fig, ax = _figure()
    x = _local(report)
    demand = report.input.timeline["demand"].to_numpy(float)
    ax.plot(x, demand, color="0.2", lw=0.8, label="demand (what happened)")
    fc = report.input.forecast
    caption = (f"Demand for {report.input.workload.name} ({report.input.workload.demand.query}) over the report. ")
    if fc is not None and np.isfinite(fc["yhat"].to_numpy(float)).any():
        lo = fc["yhat_lower"].to_numpy(float) if "yhat_lower" in fc.columns else fc["yhat"].to_numpy(float)
        ax.fill_between(x, lo, fc["yhat_upper"].to_numpy(float), color=COLORS["ebbtide"], alpha=0.22, lw=0,
                        label="forecast band (capacity is sized to its top)")
        ax.plot(x, fc["yhat"].to_numpy(float), color=COLORS["ebbtide"], lw=0.9, label="forecast")
        caption += ("The blue band is the forecast the controller held at each moment; capacity is sized to "
                    "the top of the band, so demand above it is where the forecast was too low.")
    else:
        caption += "No forecast was recorded for this range."
    _decorate(ax, report, "demand")
    ax.yaxis.set_major_formatter(_count_formatter())
    ax.legend(loc="upper right", fontsize=8)
    return Chart("demand", "Demand and forecast", caption, _png(fig))


def replicas_chart(report: Report) -> Chart:
    fig, ax = _figure()
    x = _local(report)
    for s in report.input.strategies:
        ax.step(x, report.input.timeline[f"replicas_{s}"].to_numpy(float), where="post",
                color=COLORS.get(s), lw=1.0 if s == report.ran else 0.9, label=strategy_label(s))
    _decorate(ax, report, "servers (pods) running")
    ax.legend(loc="upper right", fontsize=8)
    caption = ("Servers (Kubernetes pods) each strategy keeps running. Each one is paid for by the hour "
               f"({report.input.workload.resources.cpu_cores:g} CPU cores and "
               f"{report.input.workload.resources.memory_gib:g} GiB of memory). 'Peak capacity kept' holds "
               "the event's peak size for a week after it; plain autoscaling follows demand without a forecast.")
    return Chart("replicas", "Servers running, per strategy", caption, _png(fig))


def caps_chart(report: Report) -> Chart | None:
    caps, bitrate = report.input.caps_kbps, report.input.bitrate
    if caps is None or bitrate is None:
        return None
    fig, ax = _figure()
    x = _local(report)
    for color, tier in zip(TIER_COLORS, bitrate.tiers):
        if tier.name in caps.columns:
            ax.step(x, caps[tier.name].to_numpy(float) / 1000.0, where="post", color=color, lw=1.0,
                    label=f"{tier.name} viewers")
    top = bitrate.ladder[0].kbps / 1000.0
    ax.axhline(top, color="0.5", ls=":", lw=1, label=f"no cap ({bitrate.ladder[0].name})")
    _decorate(ax, report, "highest bitrate allowed (Mbit/s)")
    ax.set_ylim(0, top * 1.15)
    ax.legend(loc="lower right", fontsize=8)
    caption = (f"Highest video quality allowed per viewer group{_rules_said(bitrate)}; lower caps cut CDN traffic "
               f"(paid per GB or per Mbit/s). {_floors_said(bitrate)} Without Ebbtide every viewer may receive the "
               f"top rung ({bitrate.ladder[0].name}, {top:g} Mbit/s).")
    return Chart("caps", "Bitrate caps per viewer group", caption, _png(fig))


def _rules_said(bitrate) -> str:
    """`, set by the policy's cap rules (night, ebb)`, or that there are none."""
    if not bitrate.rules:
        return " (the policy has no cap rules: caps stay at the top rung)"
    return f", set by the policy's cap rules ({', '.join(r.name for r in bitrate.rules)})"


def _floors_said(bitrate) -> str:
    """Each tier's floor from the policy: `Floors set by the policy: core viewers always keep 1080p;
    edge viewers never go below 480p.` (a claim about quality only as strong as the policy's)."""
    top = bitrate.ladder[0].name
    parts = [f"{t.name} viewers always keep {top}" if t.hd_floor == top else f"{t.name} viewers never go below "
             f"{t.hd_floor}" for t in bitrate.tiers]
    return "Floors set by the policy: " + "; ".join(parts) + "."


def cost_chart(report: Report) -> Chart:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    ax, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    days = [p for p in report.daily[report.ran].periods]
    # each day's cost accrues over the day and is all in at its end (or at the report's end, for a
    # day the report ends inside): the lines end at the totals
    x = [_local_t(report, min(pd.Timestamp(p.end), pd.Timestamp(report.end))) for p in days]
    cur = report.currency
    for s in report.input.strategies:
        per = report.daily[s].by_period()
        cum = np.cumsum([float(per[p.label].total) for p in days])
        ax.plot([_local_t(report, report.start)] + x, np.r_[0.0, cum], color=COLORS.get(s),
                label=strategy_label(s))
    for b in report.baselines:
        per = report.savings_daily[b].by_period
        cum = np.cumsum([float(per[p.label].total) for p in days])
        ax2.plot([_local_t(report, report.start)] + x, np.r_[0.0, cum], color=COLORS.get(b),
                 label=f"saved against {baseline_phrase(b)}")
    ax2.axhline(0, color="0.3", lw=0.8)
    for a, title in ((ax, f"cumulative cost ({cur})"), (ax2, f"cumulative savings ({cur})")):
        _decorate(a, report, title)
        a.legend(loc="upper left", fontsize=8)
        a.yaxis.set_major_formatter(_money_formatter(cur))
        a.set_xlabel(f"local days ({report.input.zone})")
    ax2.set_ylim(auto=True)
    ax2.relim()
    ax2.autoscale_view()
    for label in ax.get_xticklabels() + ax2.get_xticklabels():
        label.set_rotation(30)
    caption = ("Left: what each strategy cost, added up day by day (at each day's end; compute, CDN egress and "
               "transcoding, where costed). "
               f"Right: how much {strategy_label(report.ran)} saved against each alternative, added up; a "
               "falling line means it cost more that day.")
    return Chart("cost", "Cumulative cost and savings", caption, _png(fig))


def _count_formatter():
    """Axis ticks as 800, 25k, 1.4M (no scientific notation)."""
    from matplotlib.ticker import FuncFormatter

    def fmt(v: float, _pos) -> str:
        a = abs(v)
        return f"{v / 1e6:,.1f}M" if a >= 1e6 else f"{v / 1e3:,.0f}k" if a >= 1e4 else f"{v:,.0f}"

    return FuncFormatter(fmt)


def _money_formatter(currency: str):
    from matplotlib.ticker import FuncFormatter

    symbol = "$" if currency == "USD" else f"{currency} "

    formatter = FuncFormatter(lambda v, _pos: fmt(v))

    def fmt(v: float) -> str:
        a = abs(v)
        # below 10 currency units the ticks are cents apart: whole units would repeat ($0 $0 $1)
        span = formatter.axis.get_view_interval() if formatter.axis is not None else (v, v)
        small = max(abs(float(t)) for t in span) < 10
        text = (f"{a / 1e6:,.1f}M" if a >= 1e6 else f"{a / 1e3:,.0f}k" if a >= 1e4
                else f"{a:,.2f}" if small else f"{a:,.0f}")
        return f"{'-' if v < 0 else ''}{symbol}{text}"

    return formatter


RC = {"text.parse_math": False}
"""matplotlib settings for every chart: text is drawn as written. Names come from the policy and
the calendar (a rung `HD $\\alpha$`, an event `$5 day`), and `$...$` would otherwise be parsed
as maths: drawn in italics, or a crash on an unknown symbol."""


def all_charts(report: Report) -> list[Chart]:
    """Every chart the report has data for, in reading order."""
    import matplotlib

    with matplotlib.rc_context(RC):
        charts = [cost_chart(report), demand_chart(report), replicas_chart(report), caps_chart(report)]
    return [c for c in charts if c is not None]


__all__ = ["Chart", "all_charts", "caps_chart", "cost_chart", "demand_chart", "event_label", "replicas_chart"]
