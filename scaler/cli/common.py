"""Helpers shared by several subcommands (argument checks that must read the same everywhere)."""

from __future__ import annotations

from datetime import datetime

from policies.errors import EbbtideError
from policies.units import parse_time


def parse_time_range(args) -> dict[str, datetime]:
    """`--start` / `--end` as aware UTC datetimes (only those given), end after start.

    Errors name the flag: `--start: time has no zone: '2026-11-11T00:00' (add Z or +08:00)`.
    """
    out: dict[str, datetime] = {}
    for flag in ("start", "end"):
        text = getattr(args, flag)
        if text is not None:
            try:
                out[flag] = parse_time(text)
            except ValueError as exc:
                raise EbbtideError(f"--{flag}: {exc}") from None
    if "start" in out and "end" in out and out["end"] <= out["start"]:
        raise EbbtideError(f"--end {args.end} must be after --start {args.start}")
    return out


def load_extra_events(path: str | None, policy, policy_path: str) -> list:
    """The `--events FILE` given with a policy (empty without one). An entry reusing a name of the
    policy's `events` is an error naming the events file's line and the policy file."""
    if not path:
        return []
    from policies.events import load_events_file

    return load_events_file(path, taken={e.name: f"the policy {policy_path}" for e in policy.events})


def check_calendar(country: str | None, calendar_tz: str) -> str | None:
    """`--country` (normalised to upper case; None: none) and `--calendar-tz`, checked before
    any fitting: an unknown code or zone would otherwise fail inside the first fit (or, where
    fits may fail, leave a run reactive throughout while it reports as usual)."""
    from policies.events import check_holiday_country
    from policies.units import check_zone

    code = country.strip().upper() if country is not None else None
    if code is not None:
        try:
            check_holiday_country(code)
        except ValueError:
            raise EbbtideError(f"--country {country!r}: no public-holiday calendar for this code (use an "
                               f"ISO 3166 country code such as US, GB, DE, CN, JP)") from None
    try:
        check_zone(calendar_tz)
    except ValueError:
        raise EbbtideError(f"--calendar-tz {calendar_tz!r}: unknown IANA time zone (e.g. UTC, "
                           f"Asia/Shanghai, America/Los_Angeles)") from None
    return code
