"""Finance reports: what each strategy cost, by day, by event and by workload, with savings,
as costs.csv (OpenCost-like columns) and one self-contained report.html with charts.

Modules: `model` (pure: ReportInput -> Report, the numbers and the headline), `sources`
(ReportInput from a replay or from Prometheus history; RecordingPlanner), `charts`
(matplotlib Agg -> PNG), `render` (CSV and HTML via jinja2, template
scaler/templates/report.html.j2). See docs/reports.md.
"""

from scaler.reporting.model import (
    EBB_AFTER,
    Accuracy,
    Headline,
    PlanStats,
    QualityFigures,
    Report,
    ReportInput,
    Window,
    build_report,
    event_label,
    event_windows,
    format_money,
    strategy_label,
)
from scaler.reporting.render import ReportFiles, render_html, write_report
from scaler.reporting.sources import RecordingPlanner, from_prometheus, from_replay, ready_query, replicas_query

__all__ = [
    "EBB_AFTER", "Accuracy", "Headline", "PlanStats", "QualityFigures", "RecordingPlanner", "Report",
    "ReportFiles", "ReportInput", "Window", "build_report", "event_label", "event_windows", "format_money",
    "from_prometheus", "from_replay", "ready_query", "render_html", "replicas_query", "strategy_label",
    "write_report",
]
