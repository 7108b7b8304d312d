"""Inputs a real user gives the CLIs on traces nobody has seen yet: regressions found by feeding
`ebbtide backtest` / `replay` generated page-view traces and their messy variants.

Cases (fast, forecaster/csvio.py through read_series_csv or scaler.cli.main):
- a duplicated time is refused naming both lines; unsorted rows are refused with a hint to sort;
- a time with a fraction of a second (jittered scrape times) is refused naming the line, instead
  of a misleading "not after the previous row" or "irregular interval" from truncated seconds;
- a lower-case `z` zone (RFC 3339) reads like `Z`;
- a UTF-16 or Latin-1 file is refused as "not UTF-8 text" (the CLI exits 2, no traceback);
- a UTF-8 byte-order mark with CRLF line ends, and America/New_York offsets across the March
  DST change (-05:00 then -04:00), read as the same UTC series as the clean `Z` file;
- `backtest --forecast-out` into a folder that does not exist fails before any fitting.
- `replay --start` after the trace's last row names the asked range and the trace's span (was a
  reversed range "2030-01-01 .. 2026-03-13");
- the replay refits only when a new interval is visible: an hourly trace with a 20-minute refit
  interval is fitted once per hour (a fake counting model), each fit on a longer history.
- the burst allowance (scaler.planning step 1b) on a noisy 5-minute history that ends in a run
  of missing points: the smoothed level is stale there, so the level is the observation alone,
  the growth is the one learnt from single points (was: 0.1 x observed + 0.9 x the level from
  before the gap, so after a 2 h gap and a 3x jump the allowance vanished), and the reason names
  the missing points; on seeded lognormal noise the single-point growth sized to one point
  covers the next point about as often as the quantile asks, the smoothed level's growth sized
  to one point does not.
Cases (Prophet fits):
- every Prophet fit of EbbtideForecaster on a fit grid under 100 points (a 2-day hourly history;
  Prophet would pick Newton there, which stopped short and took up to 20 s per fit) uses LBFGS;
- PlainProphetForecaster on a long 1-minute history fits at most `max_fit_points` points and,
  with bucket means labelled at their middle, forecasts a pure daily sine on the 1-minute grid
  without a phase shift (hand-computed: 100 + 50 sin(2 pi (h - 6) / 24)).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from forecaster.csvio import read_series_csv
from forecaster.series import Series
from policies.errors import InputFileError
from scaler.cli import main


def hourly_rows(n: int = 48, start: str = "2026-03-07T00:00:00Z") -> list[tuple[pd.Timestamp, int]]:
    idx = pd.date_range(start, periods=n, freq="1h")
    return [(t, 100 + i % 24) for i, t in enumerate(idx)]


def csv_text(rows, fmt=lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"), sep="\n") -> str:
    return sep.join(["ts,value"] + [f"{fmt(t)},{v}" for t, v in rows]) + sep


def write(tmp_path, text: str | bytes, name: str = "t.csv"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def read_error(path) -> str:
    with pytest.raises(InputFileError) as exc:
        read_series_csv(path)
    return str(exc.value)


def test_duplicate_time_names_both_lines(tmp_path):
    rows = hourly_rows(6)
    rows.insert(4, rows[3])  # data rows 3 and 4 (file lines 5 and 6) share a time
    p = write(tmp_path, csv_text(rows))
    msg = read_error(p)
    assert msg.startswith(f"{p}:6: duplicate ts 2026-03-07T03:00:00Z: line 5 has the same time"), msg


def test_unsorted_rows_say_sort(tmp_path):
    rows = hourly_rows(6)
    rows[2], rows[3] = rows[3], rows[2]
    msg = read_error(write(tmp_path, csv_text(rows)))
    assert ":5: ts 2026-03-07T02:00:00Z is not after the previous row's 2026-03-07T03:00:00Z" in msg
    assert "sort the file by ts" in msg


def test_fraction_of_a_second_is_refused_naming_the_line(tmp_path):
    rows = hourly_rows(6)
    text = csv_text(rows, fmt=lambda t: t.strftime("%Y-%m-%dT%H:%M:%S") + (".512Z" if t.hour == 2 else ".000Z"))
    p = write(tmp_path, text)
    msg = read_error(p)
    assert msg.startswith(f"{p}:4: ts 2026-03-07T02:00:00.512Z has a fraction of a second"), msg


def test_lower_case_z_reads_as_utc(tmp_path):
    rows = hourly_rows(6)
    upper = read_series_csv(write(tmp_path, csv_text(rows), "upper.csv"))
    lower = read_series_csv(write(tmp_path, csv_text(rows, fmt=lambda t: t.strftime("%Y-%m-%dT%H:%M:%Sz")),
                                  "lower.csv"))
    pd.testing.assert_series_equal(lower.values, upper.values)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_not_utf8_is_a_clear_error(tmp_path, capsys, encoding):
    text = "ts,value,note\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},{v},café\n" for t, v in hourly_rows(30))
    p = write(tmp_path, text.encode(encoding))
    assert "not UTF-8 text" in read_error(p)
    code = main(["backtest", "--csv", str(p), "--cutoff", "2026-03-08T02:00:00Z", "--horizon", "1h"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {p}: not UTF-8 text") and "Traceback" not in err


def test_bom_crlf_and_local_offsets_across_dst_read_as_utc(tmp_path):
    # 2026-03-08 is the US spring-forward day: New York offsets go from -05:00 to -04:00.
    rows = hourly_rows(48, start="2026-03-07T12:00:00Z")
    clean = read_series_csv(write(tmp_path, csv_text(rows), "clean.csv"))
    bom = read_series_csv(write(tmp_path, b"\xef\xbb\xbf" + csv_text(rows, sep="\r\n").encode(), "bom.csv"))
    ny_text = csv_text(rows, fmt=lambda t: t.tz_convert("America/New_York").isoformat())
    assert "-05:00," in ny_text and "-04:00," in ny_text
    ny = read_series_csv(write(tmp_path, ny_text, "ny.csv"))
    for s in (bom, ny):
        assert s.step == timedelta(hours=1)
        pd.testing.assert_series_equal(s.values, clean.values)


def test_forecast_out_folder_missing_fails_before_fitting(tmp_path, capsys, monkeypatch):
    import scaler.cli.backtest as bt

    def no_fit(*a, **k):
        raise AssertionError("fitted although the output folder does not exist")

    monkeypatch.setattr(bt, "compare_models", no_fit)
    p = write(tmp_path, csv_text(hourly_rows(72)))
    out = tmp_path / "missing" / "f.csv"
    code = main(["backtest", "--csv", str(p), "--cutoff", "2026-03-09T00:00:00Z", "--horizon", "24h",
                 "--forecast-out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: --forecast-out {out}: folder does not exist\n"


@pytest.mark.slow
def test_small_fit_grid_uses_lbfgs(monkeypatch):
    import prophet

    from forecaster.model import EbbtideForecaster, ModelSettings
    from policies.events import Event

    seen: list[tuple[int, str | None]] = []
    real_fit = prophet.Prophet.fit

    def recording_fit(self, df, **kwargs):
        seen.append((len(df), kwargs.get("algorithm")))
        return real_fit(self, df, **kwargs)

    monkeypatch.setattr(prophet.Prophet, "fit", recording_fit)
    idx = pd.date_range("2026-03-08T00:00:00Z", periods=62, freq="1h")
    h = idx.hour.to_numpy()
    y = 1000 * (1 + 0.4 * np.sin(2 * np.pi * (h - 9) / 24))
    ev = Event(name="news", kind="sale", start="2026-03-10T06:00:00Z", peak="2026-03-10T08:00:00Z",
               end="2026-03-10T12:00:00Z")
    inside = (idx >= ev.start) & (idx < ev.end)
    y[inside] *= 30
    y[idx >= ev.end] *= 30 * np.exp(-np.arange((idx >= ev.end).sum()) / 6.0)
    m = EbbtideForecaster((ev,), ModelSettings()).fit(Series(pd.Series(y, index=idx), timedelta(hours=1), "t"))
    assert seen and all(n < 100 for n, _ in seen)
    assert {alg for _, alg in seen} == {"LBFGS"}
    f = m.predict(pd.date_range(idx[-1] + pd.Timedelta("1h"), periods=24, freq="1h"))
    assert np.isfinite(f.frame.to_numpy()).all()
    assert (f.yhat_lower <= f.yhat).all() and (f.yhat <= f.yhat_upper).all()


@pytest.mark.slow
def test_plain_prophet_long_minute_history_is_averaged_without_phase_shift(monkeypatch):
    import prophet

    from forecaster.model import PlainProphetForecaster

    lengths: list[int] = []
    real_fit = prophet.Prophet.fit

    def recording_fit(self, df, **kwargs):
        lengths.append(len(df))
        return real_fit(self, df, **kwargs)

    monkeypatch.setattr(prophet.Prophet, "fit", recording_fit)
    idx = pd.date_range("2026-03-01T00:00:00Z", periods=10 * 1440, freq="1min")
    h = (idx - idx.normalize()).total_seconds().to_numpy() / 3600
    y = 100 + 50 * np.sin(2 * np.pi * (h - 6) / 24)
    history = Series(pd.Series(y, index=idx), timedelta(minutes=1), "sine")
    # 14,400 points over a budget of 100: averaged onto hourly buckets (240 points).
    m = PlainProphetForecaster(max_fit_points=100, uncertainty_samples=0).fit(history)
    assert lengths == [240]
    future = pd.date_range("2026-03-11T00:00:00Z", periods=1440, freq="1min")
    yhat = m.predict(future).yhat.to_numpy()
    # At 06:00 and 18:00 the sine crosses 100 at its steepest (13.1 per hour): a bucket mean
    # labelled at its start would put the forecast there ~6.4 off.
    assert abs(yhat[6 * 60] - 100) < 1.5 and abs(yhat[18 * 60] - 100) < 1.5
    # The hourly means of a 24-hour sine keep 99.7% of its amplitude (sin(pi/24) / (pi/24)).
    assert abs(yhat[12 * 60] - 150) < 1.5 and abs(yhat[0] - 50) < 1.5


REPLAY_POLICY = """
apiVersion: ebbtide/v1
schedule: {tick: 5m}
workloads:
  - name: web
    target: {kind: Deployment, namespace: default, name: web}
    demand: {query: 'x', per_replica: 100}
    pod_startup: 90s
    scaling: {min_replicas: 1, max_replicas: 50}
    forecast: {lookback: 3d, horizon: 6h, refit_interval: 20m, min_history: 1d}
"""


class CountingLevel:
    """Fake forecaster: the mean of the history as yhat, +-10%; records each fit's last ts."""

    name = "counting_level"

    def __init__(self, fits: list):
        self.fits = fits

    def fit(self, history: Series) -> "CountingLevel":
        self.fits.append(history.end)
        self.level = float(history.values.mean())
        return self

    def predict(self, index: pd.DatetimeIndex):
        from forecaster.series import Forecast

        n = len(index)
        frame = pd.DataFrame({"yhat": np.full(n, self.level), "yhat_lower": np.full(n, 0.9 * self.level),
                              "yhat_upper": np.full(n, 1.1 * self.level)}, index=index)
        return Forecast(frame, self.name)


def test_replay_start_after_the_trace_is_a_clear_error(tmp_path, capsys):
    p = write(tmp_path, csv_text(hourly_rows(72)))
    pol = write(tmp_path, REPLAY_POLICY, "policy.yaml")
    code = main(["replay", "--csv", str(p), "--policy", str(pol), "--start", "2030-01-01T00:00:00Z"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == (f"error: replay range 2030-01-01T00:00:00Z .. the trace end overlaps the trace {p} "
                   f"(2026-03-07T00:00:00Z .. 2026-03-10T00:00:00Z) by less than one interval: choose "
                   f"--start/--end inside it\n")
    # inside the trace but shorter than one of its intervals
    code = main(["replay", "--csv", str(p), "--policy", str(pol), "--start", "2026-03-08T00:00:00Z",
                 "--end", "2026-03-08T00:30:00Z"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == (f"error: replay range 2026-03-08T00:00:00Z .. 2026-03-08T00:30:00Z holds less than one "
                   f"interval (1h) of the trace {p} (2026-03-07T00:00:00Z .. 2026-03-10T00:00:00Z): choose a "
                   f"longer range\n")


def test_replay_refits_only_on_new_intervals():
    from policies.loading import load_policy_text
    from scaler.replay import replay

    rows = hourly_rows(72)
    trace = Series(pd.Series([float(v) for _, v in rows], index=pd.DatetimeIndex([t for t, _ in rows])),
                   timedelta(hours=1), "t")
    fits: list = []
    r = replay(trace, load_policy_text(REPLAY_POLICY), start=pd.Timestamp("2026-03-08T06:00:00Z"),
               end=pd.Timestamp("2026-03-08T18:00:00Z"), make_model=lambda: CountingLevel(fits))
    # Refit times 06:00, 06:20, ..., 17:40 (36). The metric lag (150 s) leaves the hour that ended
    # 2.5 min before visible at :20: histories end 04:00 (at 06:00), 05:00 (06:20 .. 07:00), ...,
    # 16:00 (17:20, 17:40): 13 distinct histories, one fit each (after the trust bootstrap's).
    refit_ends = [e for e in fits if e >= pd.Timestamp("2026-03-08T04:00:00Z")]
    assert refit_ends == list(pd.date_range("2026-03-08T04:00:00Z", "2026-03-08T16:00:00Z", freq="1h"))
    assert r.forecast.refits == 13


def test_burst_after_missing_points_grows_from_the_observation_with_the_point_growth():
    import math
    import random

    from planner_helpers import NOW, obs, policy, state, step, untrusted, workload
    from scaler.planning import plan
    from scaler.plans import RecentDemand
    from scaler.safety import burst_growth

    rnd = random.Random(5)
    noisy = [1000.0 * math.exp(rnd.gauss(0, 0.3)) for _ in range(200)]
    five = timedelta(minutes=5)
    wl = workload(headroom=0.25, pod_startup="45s", quantile=0.9, max_replicas=500)
    smoothed = burst_growth(noisy, 1, 0.9, 100)
    assert smoothed.alpha < 1.0  # smoothing wins on this history
    for missing in (1, 24):
        values = tuple(noisy[missing:]) + (math.nan,) * missing
        history = RecentDemand(NOW - 201 * five, five, values)  # last point ends at 11:55
        point = burst_growth(values, 1, 0.9, 100, alphas=(1.0,))
        p = plan(untrusted(), obs(3000.0, at=NOW - timedelta(seconds=150), recent_demand=history),
                 wl, policy(wl), state(8), NOW)
        burst = step(p, "burst")
        assert burst.after == pytest.approx(3000.0 * point.growth / 1.25 ** 0.85)
        assert burst.after > 3000.0  # the allowance stands (it was "3000 already covers")
        last = "last point is missing" if missing == 1 else f"last {missing} points are missing"
        assert f"observed 3000 (the smoothed level does not reach the observed point: the history's {last}" \
            in burst.reason


def test_point_growth_covers_a_single_point_the_smoothed_growth_does_not():
    from scaler.safety import burst_growth

    rng = np.random.default_rng(1)
    x = 1000.0 * np.exp(rng.normal(0.0, 0.2, 6000))
    learnt, point = burst_growth(x[:2000], 1, 0.9, 100), burst_growth(x[:2000], 1, 0.9, 100, alphas=(1.0,))
    assert learnt.alpha < 1.0
    now, nxt = x[2000:-1], x[2001:]
    cover_point = float(np.mean(nxt <= now * point.growth))
    cover_smoothed = float(np.mean(nxt <= now * learnt.growth))
    assert cover_point >= 0.85 and cover_smoothed < cover_point - 0.05
