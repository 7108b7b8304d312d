"""Reading and writing `ts,value` CSV traces (forecaster/csvio.py).

Cases:
- a clean file: UTC index, step from the spacing, values as floats, extra columns ignored,
  header case and spaces tolerated;
- empty cells and `nan` are missing points; a hole of whole intervals becomes NaN rows;
- rows with different zone offsets (+08:00 and Z) are converted to UTC (a crash before the fix);
- errors name file and line: missing file, empty file, missing column, one data row, bad ts,
  ts without a zone (also on a later row), bad value, negative value, infinite value, rows not
  increasing, irregular interval;
- write_series_csv -> read_series_csv round-trips (integers written without decimals, NaN
  empty); interval_text.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.csvio import interval_text, read_series_csv, write_series_csv
from forecaster.series import Series
from policies.errors import InputFileError


def write(tmp_path, text: str, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_clean_file(tmp_path):
    p = write(tmp_path, " TS , Value ,note\n2026-01-01T00:05:00Z,3,a\n2026-01-01T00:10:00Z,4.5,b\n"
                        "2026-01-01T00:15:00Z,0,c\n")
    s = read_series_csv(p)
    assert s.step == timedelta(minutes=5)
    assert str(s.index.tz) == "UTC"
    assert s.start == pd.Timestamp("2026-01-01T00:05:00Z")
    np.testing.assert_array_equal(s.values.to_numpy(), [3.0, 4.5, 0.0])
    assert s.name == str(p)


def test_missing_points_and_holes(tmp_path):
    p = write(tmp_path, "ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,\n"
                        "2026-01-01T02:00:00Z,nan\n2026-01-01T03:00:00Z,4\n2026-01-01T06:00:00Z,7\n"
                        "2026-01-01T07:00:00Z,8\n")
    s = read_series_csv(p)
    assert s.step == timedelta(hours=1)
    assert len(s) == 8
    np.testing.assert_array_equal(s.values.to_numpy(), [1, np.nan, np.nan, 4, np.nan, np.nan, 7, 8])


def test_mixed_offsets_are_converted(tmp_path):
    p = write(tmp_path, "ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T09:00:00+08:00,2\n"
                        "2026-01-01T02:00:00Z,3\n")
    s = read_series_csv(p)
    assert list(s.index) == list(pd.date_range("2026-01-01T00:00:00Z", periods=3, freq="1h"))
    np.testing.assert_array_equal(s.values.to_numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", ": file is empty"),
        ("ts,count\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,1\n", ":1: missing column(s) value"),
        ("ts,value\n2026-01-01T00:00:00Z,1\n", "needs at least 2 data rows, found 1"),
        ("2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,1\n2026-01-01T02:00:00Z,1\n",
         ":1: missing column(s) ts, value in header 2026-01-01T00:00:00Z,1 (the file has no header row? add "
         "`ts,value` as its first line)"),
        ("ts;value\n2026-01-01T00:00:00Z;1\n2026-01-01T01:00:00Z;1\n",
         ":1: missing column(s) ts, value in header ts;value (columns separated by ';'? separate them with commas"),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,1,2,3\n",
         ":3: 4 fields where the header has 2 (a comma inside a value? quote it, or remove the extra column)"),
        ("ts,value\n2026-01-01T00:00:00Z,1\nlater,2\n", ":3: ts 'later' is not an ISO 8601 time"),
        ("ts,value\n2026-01-01T00:00:00,1\n2026-01-01T01:00:00,2\n", ":2: ts '2026-01-01T00:00:00' has no zone"),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00,2\n", ":3: ts '2026-01-01T01:00:00' has no zone"),
        ("ts,value\n2026-01-01,1\n2026-01-02,2\n", ":2: ts '2026-01-01' has no zone"),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,x1\n", ":3: value 'x1' is not a number"),
        ("ts,value\n2026-01-01T00:00:00Z,-1\n2026-01-01T01:00:00Z,1\n", ":2: value -1 is negative"),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,inf\n", ":3: value inf is not finite"),
        ("ts,value\n2026-01-01T01:00:00Z,1\n2026-01-01T00:00:00Z,1\n", ":3: ts 2026-01-01T00:00:00Z is not after"),
        ("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,1\n2026-01-01T02:00:00Z,1\n"
         "2026-01-01T02:30:00Z,1\n", ":5: irregular interval: 2026-01-01T02:00:00Z -> 2026-01-01T02:30:00Z"),
        ("ts,value,Value\n2026-01-01T00:00:00Z,1,2\n2026-01-01T01:00:00Z,1,2\n",
         ":1: column(s) value appear more than once in header ts,value,Value (names are read without case)"),
        ("TS,ts,value\n2026-01-01T00:00:00Z,2026-01-01T00:00:00Z,1\n2026-01-01T01:00:00Z,2026-01-01T01:00:00Z,1\n",
         ":1: column(s) ts appear more than once"),
        ("ts,value\n2014-10-31T00:00:00-04:00,1\n2014-11-01T00:00:00-04:00,1\n2014-11-02T00:00:00-04:00,1\n"
         "2014-11-03T00:00:00-05:00,1\n2014-11-04T00:00:00-05:00,1\n",
         ":5: irregular interval: 2014-11-02T00:00:00-04:00 -> 2014-11-03T00:00:00-05:00 is 90000s, not a multiple "
         "of the file's interval 86400s (rows at local midnight across a daylight-saving change"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, fragment):
    p = write(tmp_path, text)
    with pytest.raises(InputFileError) as exc:
        read_series_csv(p)
    assert str(exc.value).startswith(str(p))
    assert fragment in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        read_series_csv(tmp_path / "none.csv")


def test_round_trip(tmp_path):
    idx = pd.date_range("2026-01-01T00:00:00Z", periods=5, freq="15min")
    s = Series(pd.Series([1.0, np.nan, 3.0, 0.0, 12.0], index=idx), timedelta(minutes=15), "x")
    p = tmp_path / "out.csv"
    write_series_csv(s, p)
    text = p.read_text().splitlines()
    assert text[0] == "ts,value"
    assert text[1] == "2026-01-01T00:00:00Z,1" and text[2] == "2026-01-01T00:15:00Z,"
    back = read_series_csv(p)
    assert back.step == s.step
    pd.testing.assert_series_equal(back.values, s.values, check_names=False, check_freq=False)

    frac = Series(pd.Series([0.25, 1.5], index=idx[:2]), timedelta(minutes=15))
    write_series_csv(frac, p)
    np.testing.assert_array_equal(read_series_csv(p).values.to_numpy(), [0.25, 1.5])


def test_interval_text():
    assert interval_text(timedelta(hours=1)) == "1h"
    assert interval_text(timedelta(minutes=5)) == "5min"
    assert interval_text(timedelta(seconds=30)) == "30s"
    assert interval_text(timedelta(days=1)) == "24h"
