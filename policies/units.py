"""Durations and times as people write them in policies and on the command line.

Durations: `90s`, `15m`, `1h30m`, `168h`, `7d`, `2w` (also plain seconds as a number).
Times: ISO 8601 with a zone (`2026-11-11T12:00:00Z`, `2026-11-11T20:00:00+08:00`); zones by IANA
name (`check_zone`).
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import datetime, timedelta, timezone

_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse `90s`, `15m`, `1h30m`, `7d`, `2w` or a number of seconds into a timedelta.

    Raises ValueError with the offending text when it is not a positive-or-zero duration, or
    one longer than a timedelta holds (`.inf`, `99999999999w`): never OverflowError.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and math.isnan(text):
            raise ValueError(f"not a duration: {text!r} (use a number and a unit: 90s, 15m, 1h30m, 168h, 7d)")
        if text < 0:
            raise ValueError(f"duration must not be negative: {text!r}")
        return _seconds(float(text), text)
    s = str(text).strip().lower()
    if not s:
        raise ValueError("empty duration")
    pos = 0
    total_s = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total_s += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(
            f"not a duration: {text!r} (use a number and a unit: 90s, 15m, 1h30m, 168h, 7d)"
        )
    return _seconds(total_s, text)


def _seconds(total_s: float, text: object) -> timedelta:
    """`total_s` seconds as a timedelta; ValueError naming `text` when no timedelta holds it."""
    try:
        return timedelta(seconds=total_s)
    except OverflowError:
        raise ValueError(f"duration too long: {text!r} (at most {timedelta.max.days:,} days)") from None


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count as people write it in reasons and messages: `1 pod`, `2 pods`, `0 pods` (`many`:
    the plural when it is not `word` + "s"). The one helper the planner (scaler.safety) and the
    trust check (forecaster.backtest) both use."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def format_duration(td: timedelta) -> str:
    """Shortest exact text for a duration: 5400s -> `1h30m`, 7 days -> `7d`."""
    total = int(round(td.total_seconds()))
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        q, total = divmod(total, size)
        if q:
            out.append(f"{q}{unit}")
    return "".join(out)


def parse_time(text: str | datetime, keep_zone: bool = False) -> datetime:
    """Parse an ISO 8601 time that carries a zone; returns an aware datetime in UTC (with
    `keep_zone`, the same instant in the offset it was written with).

    A time without a zone is refused (Ebbtide never guesses the zone of a sales event), and so is
    one outside the years 1-9999 once in UTC (`9999-12-31T20:00:00-05:00`): ValueError naming the
    text, never OverflowError.
    """
    if isinstance(text, datetime):
        dt = text
    else:
        s = str(text).strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-11T12:00:00Z)") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"time has no zone: {text!r} (add Z or +08:00)")
    try:
        utc = dt.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"time out of range: {text!r} is outside the years 1-9999 in UTC") from None
    return dt if keep_zone else utc


def check_zone(name: str) -> str:
    """`name` unchanged when it is an IANA time zone (e.g. Asia/Shanghai, UTC); else ValueError
    naming it."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. Asia/Shanghai, UTC)") from None
    return name
