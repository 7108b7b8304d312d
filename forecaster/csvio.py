"""Reading and writing `ts,value` CSV traces, with errors that name the file and the line.

Rules (documented in docs/forecasting.md):
- UTF-8 text (a byte-order mark and CRLF line ends are fine);
- a header row naming `ts` and `value` (other columns are ignored);
- `ts` is ISO 8601 with a zone (`2015-07-13T13:00:00Z`, `...+08:00`); times without a zone, and
  times with a fraction of a second, are refused;
- `value` is a number >= 0; an empty cell is a missing point (NaN);
- rows strictly increasing in time on a regular grid: the interval is the most common spacing;
  a hole that is a whole number of intervals becomes NaN points, anything else is an error; a
  duplicated time is an error naming both lines.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.series import Series
from policies.errors import InputFileError


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def read_series_csv(path: str | Path) -> Series:
    """Read a `ts,value` CSV into a regular Series; raise InputFileError naming file:line."""
    p = Path(path)
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputFileError([f"{p}: file not found"]) from None
    except pd.errors.EmptyDataError:
        raise InputFileError([f"{p}: file is empty (expected a header `ts,value` and rows)"]) from None
    except UnicodeDecodeError as exc:
        raise InputFileError([f"{p}: not UTF-8 text ({exc.reason}); save it as UTF-8 "
                              f"(spreadsheets: CSV UTF-8)"]) from None
    except pd.errors.ParserError as exc:
        m = _FIELDS.search(str(exc))
        if m:  # "Error tokenizing data. C error: Expected 2 fields in line 122, saw 4"
            raise InputFileError([f"{p}:{m.group(2)}: {m.group(3)} fields where the header has {m.group(1)} "
                                  f"(a comma inside a value? quote it, or remove the extra column)"]) from None
        raise InputFileError([f"{p}: not a readable CSV: {exc}"]) from None
    except OSError as exc:
        raise InputFileError([f"{p}: not a readable CSV: {exc}"]) from None
    header = [str(c).strip() for c in raw.columns]
    cols = [c.lower() for c in header]
    raw.columns = cols
    missing = [c for c in ("ts", "value") if c not in cols]
    twice = sorted({c for c in ("ts", "value") if cols.count(c) > 1})
    if twice:
        raise InputFileError([f"{p}:1: column(s) {', '.join(twice)} appear more than once in header "
                              f"{','.join(header)!s} (names are read without case); keep one of each"])
    if missing:
        sep = next((c for c in ";\t|" if any(c in h for h in header)), None)
        if any(_ISO_START.match(c) for c in header):
            hint = " (the file has no header row? add `ts,value` as its first line)"
        elif sep is not None:
            hint = f" (columns separated by {sep!r}? separate them with commas: `ts,value`)"
        else:
            hint = " (expected `ts,value`)"
        raise InputFileError(
            [f"{p}:1: missing column(s) {', '.join(missing)} in header {','.join(header)!s}{hint}"]
        )
    if len(raw) < 2:
        raise InputFileError([f"{p}: needs at least 2 data rows, found {len(raw)}"])

    def line(i: int) -> int:  # data row i -> file line (header is line 1)
        return int(i) + 2

    # RFC 3339 allows a lower-case `z`; pandas' ISO 8601 parser does not.
    ts_text = raw["ts"].str.strip().str.replace(r"(?<=\d)z$", "Z", regex=True)
    # utc=True: rows may carry different offsets (+08:00 and Z); rows without a zone are
    # found by their text, since parsing with utc=True would silently read them as UTC.
    ts = pd.to_datetime(ts_text, utc=True, errors="coerce", format="ISO8601")
    bad = ts.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputFileError([f"{p}:{line(i)}: ts {ts_text.iloc[i]!r} is not an ISO 8601 time"])
    zoned = ts_text.str.contains(r"[T ]\d{2}(?::?\d{2})*(?:\.\d+)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$", regex=True)
    if not zoned.all():
        i = int(np.flatnonzero(~zoned.to_numpy())[0])
        raise InputFileError(
            [f"{p}:{line(i)}: ts {ts_text.iloc[i]!r} has no zone; write times like 2015-07-13T13:00:00Z"]
        )

    val_text = raw["value"].str.strip()
    values = pd.to_numeric(val_text.replace("", np.nan), errors="coerce")
    bad = values.isna() & (val_text != "") & ~val_text.str.lower().isin(["nan", "na", "null"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputFileError([f"{p}:{line(i)}: value {val_text.iloc[i]!r} is not a number"])
    neg = values < 0
    if neg.any():
        i = int(np.flatnonzero(neg.to_numpy())[0])
        raise InputFileError([f"{p}:{line(i)}: value {val_text.iloc[i]} is negative; demand counts are >= 0"])
    inf = ~np.isfinite(values.fillna(0.0))
    if inf.any():
        i = int(np.flatnonzero(inf.to_numpy())[0])
        raise InputFileError([f"{p}:{line(i)}: value {val_text.iloc[i]} is not finite"])

    frac = ts.dt.microsecond.to_numpy() + ts.dt.nanosecond.to_numpy() != 0
    if frac.any():
        i = int(np.flatnonzero(frac)[0])
        raise InputFileError(
            [f"{p}:{line(i)}: ts {ts_text.iloc[i]} has a fraction of a second; traces are on a grid of "
             f"whole seconds (round the times to the interval)"]
        )
    ns = ts.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype("int64")
    diffs = np.diff(ns)
    nonpos = np.flatnonzero(diffs <= 0)
    if nonpos.size:
        i = int(nonpos[0]) + 1
        if diffs[i - 1] == 0:
            raise InputFileError(
                [f"{p}:{line(i)}: duplicate ts {ts_text.iloc[i]}: line {line(i - 1)} has the same time "
                 f"({ts_text.iloc[i - 1]}); keep one row per time"]
            )
        raise InputFileError(
            [f"{p}:{line(i)}: ts {ts_text.iloc[i]} is not after the previous row's "
             f"{ts_text.iloc[i - 1]} (rows must be strictly increasing: sort the file by ts)"]
        )
    vals, counts = np.unique(diffs, return_counts=True)
    step_s = int(vals[np.argmax(counts)])
    off = np.flatnonzero(diffs % step_s != 0)
    if off.size:
        i = int(off[0]) + 1
        hint, r = "", int(diffs[i - 1]) % step_s
        if step_s >= 86400 and min(r, step_s - r) <= 7200 and ts_text.iloc[i - 1][-6:] != ts_text.iloc[i][-6:]:
            # an hour or two off whole days, and the offset written changes: local midnight across DST
            hint = (" (rows at local midnight across a daylight-saving change: a day is then 23 or 25 hours; "
                    "write each day at UTC midnight, or all rows in one fixed offset)")
        raise InputFileError(
            [f"{p}:{line(i)}: irregular interval: {ts_text.iloc[i - 1]} -> {ts_text.iloc[i]} is "
             f"{diffs[i - 1]}s, not a multiple of the file's interval {step_s}s{hint}"]
        )
    s = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(ts), name="value")
    full = pd.date_range(s.index[0], s.index[-1], freq=pd.Timedelta(seconds=step_s))
    if len(full) != len(s):
        s = s.reindex(full)
    return Series(s, timedelta(seconds=step_s), name=str(p))


def write_series_csv(series: Series, path: str | Path) -> None:
    """Write `ts,value` (ISO 8601 UTC, `Z`); NaN as an empty cell."""
    out = pd.DataFrame({"ts": series.index.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": series.values.to_numpy()})
    out.to_csv(path, index=False, na_rep="", float_format=_float_format(series.values))


def _float_format(values: pd.Series) -> str | None:
    v = values.dropna().to_numpy()
    if v.size and np.all(np.equal(np.mod(v, 1), 0)) and np.all(np.abs(v) < 2**53):
        return "%.0f"
    return None


def interval_text(step: timedelta) -> str:
    s = int(step.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}min"
    return f"{s}s"
