"""Unit tests for forecaster.history, with a fake Prometheus client (no server).

Cases:
- grid: both ends inclusive, end off the grid is floored, naive times / sub-second steps refused;
- choose_step: hand-computed table; property: fits max_points, never finer than preferred, nice;
- plan_chunks: hand-computed split; property: chunks tile the grid exactly, each <= max_points;
- range: exact values on the grid, gaps -> NaN, NaN/+Inf/-Inf samples -> NaN, off-range samples
  ignored, explicit start/end/step sent; chunked ranges stitched with no duplicate or missing
  boundary point and every request within the server limit;
- no data: full grid all NaN, has_data False, data_fraction 0;
- several series: MetricsError naming query, server and label sets, suggesting sum(...);
  a series present only in a later chunk still counts; reducers sum/max/mean NaN-aware;
- errors: connection refused, timeout, HTTP 400 with body excerpt, non-Prometheus answer ->
  MetricsError naming query and server, no traceback chain; credentials redacted from the URL;
- constructor: bearer + basic auth refused, bad URL, missing CA bundle, unknown reducer;
- instant: value + sample time (timestamp() query), empty -> None, a scalar literal at the
  evaluation time, a scalar of selectors as old as they are, several -> error,
  reducer -> combined value with the oldest sample time, a range vector -> error saying so;
- StaticMetricsSource: same-grid exact, coarser/finer query steps, unknown query, instant lookback.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_api_client import PrometheusApiClientException

from forecaster.history import (
    NICE_STEPS_S,
    InstantValue,
    MetricsError,
    MetricsSource,
    PrometheusSource,
    StaticMetricsSource,
    choose_step,
    data_fraction,
    grid,
    has_data,
    plan_chunks,
)
from forecaster.series import Series

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=timezone.utc)
T0_S = int(T0.timestamp())
URL = "http://prom.test:9090"
MIN = timedelta(minutes=1)


class FakePrometheus:
    """Stands in for PrometheusConnect: answers from stored samples at exact grid times.

    `samples`: {frozenset(labels.items()): {epoch_s: "value text"}}. Enforces Prometheus's
    11,000-points rule like the server (HTTP 400 when (end - start) / step > 11000) and records
    every call. `instant_answers`: {query: result} for custom_query.
    """

    def __init__(self, samples=None, instant_answers=None, fail=None):
        self.samples = samples or {}
        self.instant_answers = instant_answers or {}
        self.fail = fail
        self.range_calls: list[tuple[str, datetime, datetime, str, dict]] = []
        self.instant_calls: list[tuple[str, dict]] = []

    def custom_query_range(self, query, start_time, end_time, step, params=None):
        self.range_calls.append((query, start_time, end_time, step, params))
        if self.fail:
            raise self.fail
        start_s, end_s = round(start_time.timestamp()), round(end_time.timestamp())
        step_s = int(step.rstrip("s"))
        if (end_s - start_s) / step_s > 11000:
            raise PrometheusApiClientException(
                "HTTP Status Code 400 (b'{\"status\":\"error\",\"errorType\":\"bad_data\","
                "\"error\":\"exceeded maximum resolution of 11,000 points per timeseries\"}')"
            )
        out = []
        for labels, points in self.samples.items():
            values = [[t, points[t]] for t in range(start_s, end_s + 1, step_s) if t in points]
            if values:
                out.append({"metric": dict(labels), "values": values})
        return out

    def custom_query(self, query, params=None):
        self.instant_calls.append((query, params))
        if self.fail:
            raise self.fail
        return self.instant_answers.get(query, [])


def source(fake, **kw) -> PrometheusSource:
    return PrometheusSource(URL, client=fake, **kw)


def at(k: int, step: timedelta = MIN) -> datetime:
    return T0 + k * step


# ---------------------------------------------------------------------------------- grid


def test_grid_includes_both_ends_and_floors_an_off_grid_end():
    g = grid(T0, T0 + timedelta(minutes=10), timedelta(minutes=5))
    assert list(g) == [pd.Timestamp(T0), pd.Timestamp(T0 + 5 * MIN), pd.Timestamp(T0 + 10 * MIN)]
    g = grid(T0, T0 + timedelta(minutes=14), timedelta(minutes=5))
    assert len(g) == 3 and g[-1] == pd.Timestamp(T0 + 10 * MIN)
    assert str(g.tz) == "UTC"


def test_grid_converts_zones_to_utc():
    plus8 = timezone(timedelta(hours=8))
    g = grid(datetime(2026, 11, 11, 8, 0, tzinfo=plus8), datetime(2026, 11, 11, 8, 2, tzinfo=plus8), MIN)
    assert g[0] == pd.Timestamp(T0) and len(g) == 3


@pytest.mark.parametrize(
    "start,end,step,message",
    [
        (T0.replace(tzinfo=None), T0 + MIN, MIN, "zone"),
        (T0, T0 + MIN, timedelta(milliseconds=1500), "whole number of seconds"),
        (T0, T0 + MIN, timedelta(0), "whole number of seconds"),
        (T0 + timedelta(milliseconds=500), T0 + MIN, MIN, "whole second"),
        (T0 + MIN, T0, MIN, "before start"),
    ],
)
def test_grid_refuses_bad_arguments(start, end, step, message):
    with pytest.raises(ValueError, match=message):
        grid(start, end, step)


# ---------------------------------------------------------------------------- choose_step


@pytest.mark.parametrize(
    "lookback,preferred,expected",
    [
        # 28 d at 5 min = 8,065 points: fits, kept.
        (timedelta(days=28), timedelta(minutes=5), timedelta(minutes=5)),
        # 28 d at 1 min = 40,321 points; min step 2,419,200 s / 10,999 = 219.9 s -> 5 min.
        (timedelta(days=28), MIN, timedelta(minutes=5)),
        # 7 d, no preference: 604,800 / 10,999 = 54.99 s -> 1 min.
        (timedelta(days=7), None, MIN),
        # 1 h, no preference: 0.33 s -> 1 s.
        (timedelta(hours=1), None, timedelta(seconds=1)),
        # 365 d at 1 min: 31,536,000 / 10,999 = 2,867 s -> 1 h.
        (timedelta(days=365), MIN, timedelta(hours=1)),
        # A non-nice preference that fits is kept as is.
        (timedelta(days=1), timedelta(seconds=45), timedelta(seconds=45)),
        # A preference coarser than needed is kept (never made finer).
        (timedelta(hours=2), timedelta(hours=1), timedelta(hours=1)),
        # 100 years: 3,153,600,000 / 10,999 = 286,717 s -> 4 whole days (past the 1 d ladder).
        (timedelta(days=36500), None, timedelta(days=4)),
        # Exactly 10,999 steps fit: 10,999 min at 1 min = 11,000 points.
        (timedelta(minutes=10999), MIN, MIN),
        (timedelta(minutes=11000), MIN, timedelta(minutes=2)),
    ],
)
def test_choose_step_table(lookback, preferred, expected):
    assert choose_step(lookback, preferred) == expected


def test_choose_step_honours_a_smaller_point_budget():
    # 1 d in <= 100 points: 86,400 / 99 = 872.7 s -> 15 min.
    assert choose_step(timedelta(days=1), MIN, max_points=100) == timedelta(minutes=15)


@settings(max_examples=200, deadline=None)
@given(
    lookback_s=st.integers(min_value=1, max_value=400 * 86400),
    preferred_s=st.one_of(st.none(), st.integers(min_value=1, max_value=7200)),
    max_points=st.integers(min_value=2, max_value=20000),
)
def test_choose_step_fits_and_is_never_finer_than_preferred(lookback_s, preferred_s, max_points):
    preferred = timedelta(seconds=preferred_s) if preferred_s is not None else None
    step = choose_step(timedelta(seconds=lookback_s), preferred, max_points)
    step_s = step.total_seconds()
    assert lookback_s / step_s + 1 <= max_points + 1e-9
    if preferred is not None:
        assert step >= preferred
    if step != preferred:
        assert int(step_s) in NICE_STEPS_S or step_s % 86400 == 0


@pytest.mark.parametrize("lookback,preferred", [(timedelta(0), None), (timedelta(days=1), timedelta(0))])
def test_choose_step_refuses_non_positive(lookback, preferred):
    with pytest.raises(ValueError, match="positive"):
        choose_step(lookback, preferred)


# ---------------------------------------------------------------------------- plan_chunks


def test_plan_chunks_hand_computed():
    # 26 points (k = 0..25), 10 per chunk -> [0..9], [10..19], [20..25].
    chunks = plan_chunks(T0, at(25), MIN, max_points=10)
    assert chunks == [
        (pd.Timestamp(at(0)), pd.Timestamp(at(9))),
        (pd.Timestamp(at(10)), pd.Timestamp(at(19))),
        (pd.Timestamp(at(20)), pd.Timestamp(at(25))),
    ]
    assert plan_chunks(T0, at(9), MIN, max_points=10) == [(pd.Timestamp(at(0)), pd.Timestamp(at(9)))]
    assert plan_chunks(T0, T0, MIN) == [(pd.Timestamp(T0), pd.Timestamp(T0))]


@settings(max_examples=100, deadline=None)
@given(
    n_steps=st.integers(min_value=0, max_value=5000),
    step_s=st.sampled_from([1, 15, 60, 300, 3600]),
    max_points=st.integers(min_value=1, max_value=1200),
)
def test_plan_chunks_tile_the_grid_exactly(n_steps, step_s, max_points):
    step = timedelta(seconds=step_s)
    end = T0 + n_steps * step
    chunks = plan_chunks(T0, end, step, max_points)
    # Tiling: first chunk starts at start, each next one step after the previous ends, the
    # last ends on the grid's last point; every chunk has 1..max_points points.
    assert chunks[0][0] == pd.Timestamp(T0) and chunks[-1][1] == pd.Timestamp(end)
    for (_, prev_last), (first, _) in zip(chunks, chunks[1:]):
        assert first == prev_last + step
    sizes = [(last - first) // step + 1 for first, last in chunks]
    assert all(1 <= n <= max_points for n in sizes) and sum(sizes) == n_steps + 1
    assert len(chunks) == -(-(n_steps + 1) // max_points)


# ------------------------------------------------------------------------- range: the rules


def labels(**kw) -> frozenset:
    return frozenset({"__name__": "demand", **kw}.items())


def test_range_exact_values_gaps_and_non_finite_samples():
    # Grid T0..T0+6min at 1 min (7 points). k=2 and k=5 absent (gaps); k=3 NaN, k=4 +Inf,
    # k=6 -Inf; a sample one minute before start and after end must be ignored.
    pts = {T0_S - 60: "99", T0_S: "1.25", T0_S + 60: "2.5", T0_S + 180: "NaN", T0_S + 240: "+Inf",
           T0_S + 360: "-Inf", T0_S + 420: "99"}
    fake = FakePrometheus({labels(job="edge"): pts})
    s = source(fake).range("demand", T0, at(6), MIN)
    assert isinstance(s, Series) and s.name == "demand" and s.step == MIN
    assert list(s.index) == list(grid(T0, at(6), MIN))
    expected = [1.25, 2.5, np.nan, np.nan, np.nan, np.nan, np.nan]
    np.testing.assert_array_equal(s.values.to_numpy(), expected)
    # One request with explicit start, end and step; the server-side timeout goes along.
    assert len(fake.range_calls) == 1
    query, start, end, step, params = fake.range_calls[0]
    assert (query, start, end, step) == ("demand", T0, at(6), "60s")
    assert params == {"timeout": "30"}


def test_range_with_no_data_is_the_full_grid_all_nan():
    s = source(FakePrometheus()).range("absent_metric", T0, at(10), MIN)
    assert len(s) == 11 and s.values.isna().all()
    assert not has_data(s) and data_fraction(s) == 0.0


def test_data_fraction_counts_points_with_values():
    s = Series.from_pairs(grid(T0, at(3), MIN), [1.0, np.nan, 3.0, np.nan], MIN)
    assert has_data(s) and data_fraction(s) == 0.5


def test_chunked_range_is_stitched_without_duplicate_or_missing_boundary():
    # 25,001 points at 1 min (k = 0..25,000) -> chunks of 11,000: [0..10999], [11000..21999],
    # [22000..25000]. Value k+0.5 at every point except k = 10,999 and 11,000 (boundary gap).
    n = 25_001
    pts = {T0_S + 60 * k: repr(k + 0.5) for k in range(n) if k not in (10_999, 11_000)}
    fake = FakePrometheus({labels(): pts})
    s = source(fake).range("demand", T0, at(n - 1), MIN)
    assert [(c[1], c[2]) for c in fake.range_calls] == [
        (at(0), at(10_999)), (at(11_000), at(21_999)), (at(22_000), at(25_000))]
    expected = np.arange(n) + 0.5
    expected[[10_999, 11_000]] = np.nan
    np.testing.assert_array_equal(s.values.to_numpy(), expected)
    assert not s.index.has_duplicates and len(s) == n


def test_the_fake_server_limit_is_real_so_chunking_is_needed():
    fake = FakePrometheus({labels(): {T0_S: "1"}})
    with pytest.raises(MetricsError, match="HTTP 400: bad_data: exceeded maximum resolution"):
        source(fake, max_points_per_query=20_000).range("demand", T0, at(11_001), MIN)


def test_several_series_are_refused_with_their_label_sets():
    fake = FakePrometheus({labels(pod="a"): {T0_S: "1"}, labels(pod="b"): {T0_S: "2"}})
    with pytest.raises(MetricsError) as err:
        source(fake).range("demand", T0, at(2), MIN)
    msg = str(err.value)
    assert msg.startswith(f"prometheus {URL}: query 'demand' failed: returned 2 series")
    assert 'demand{pod="a"}' in msg and 'demand{pod="b"}' in msg and "sum(demand)" in msg
    assert err.value.query == "demand" and err.value.url == URL


def test_many_series_are_listed_up_to_five():
    fake = FakePrometheus({labels(pod=str(i)): {T0_S: "1"} for i in range(8)})
    with pytest.raises(MetricsError, match=r"returned 8 series.* and 3 more\."):
        source(fake).range("demand", T0, at(1), MIN)


def test_a_series_only_in_a_later_chunk_still_counts_as_several():
    fake = FakePrometheus({labels(pod="a"): {T0_S: "1"}, labels(pod="b"): {T0_S + 60 * 15: "2"}})
    with pytest.raises(MetricsError, match="returned 2 series"):
        source(fake, max_points_per_query=10).range("demand", T0, at(19), MIN)


@pytest.mark.parametrize(
    "reducer,expected",
    [
        # a: 1, NaN(absent), 4, absent   b: 2, 3, absent(+Inf), absent
        ("sum", [3.0, 3.0, 4.0, np.nan]),
        ("max", [2.0, 3.0, 4.0, np.nan]),
        ("min", [1.0, 3.0, 4.0, np.nan]),
        ("mean", [1.5, 3.0, 4.0, np.nan]),
    ],
)
def test_reducer_combines_series_point_by_point_ignoring_nan(reducer, expected):
    fake = FakePrometheus({
        labels(pod="a"): {T0_S: "1", T0_S + 120: "4"},
        labels(pod="b"): {T0_S: "2", T0_S + 60: "3", T0_S + 120: "+Inf"},
    })
    s = source(fake, reducer=reducer).range("demand", T0, at(3), MIN)
    np.testing.assert_array_equal(s.values.to_numpy(), expected)


def test_reducer_across_chunks():
    fake = FakePrometheus({labels(pod="a"): {T0_S + 60 * k: "1" for k in range(20)},
                           labels(pod="b"): {T0_S + 60 * k: "2" for k in range(10, 20)}})
    s = source(fake, reducer="sum", max_points_per_query=7).range("demand", T0, at(19), MIN)
    np.testing.assert_array_equal(s.values.to_numpy(), [1.0] * 10 + [3.0] * 10)


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "exc,reason",
    [
        (requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='prom.test', port=9090): Max retries exceeded "
            "(Caused by NewConnectionError('Failed to establish a new connection: "
            "[Errno 111] Connection refused'))"), "connection refused"),
        (requests.exceptions.ReadTimeout("Read timed out. (read timeout=30.0)"), "timed out after 30s"),
        (requests.exceptions.ConnectionError("Failed to resolve 'prom.test' ([Errno -2] Name or service "
                                             "not known)"), "host name not found"),
        (PrometheusApiClientException(
            "HTTP Status Code 422 (b'{\"status\":\"error\",\"errorType\":\"execution\","
            "\"error\":\"query processing would load too many samples into memory\"}')"),
         "HTTP 422: execution: query processing would load too many samples into memory"),
        (PrometheusApiClientException("HTTP Status Code 502 (b'<html>Bad Gateway</html>')"),
         "HTTP 502: <html>Bad Gateway</html>"),
        (KeyError("data"),
         "the answer is not a Prometheus API response (is the URL the Prometheus server?)"),
    ],
)
def test_failures_become_metrics_errors_naming_query_and_server(exc, reason):
    fake = FakePrometheus(fail=exc)
    q = "sum(rate(x[5m]))"
    for call in (lambda s: s.range(q, T0, at(5), MIN), lambda s: s.instant(q, T0)):
        with pytest.raises(MetricsError) as err:
            call(source(fake))
        assert str(err.value) == f"prometheus {URL}: query {q!r} failed: {reason}"
        assert err.value.__cause__ is None and err.value.__suppress_context__


def test_http_status_is_kept_on_the_error():
    fake = FakePrometheus(fail=PrometheusApiClientException("HTTP Status Code 400 (b'oops')"))
    with pytest.raises(MetricsError) as err:
        source(fake).range("x", T0, at(1), MIN)
    assert err.value.status == 400


def test_long_error_bodies_are_cut_to_an_excerpt():
    body = "x" * 5000
    fake = FakePrometheus(fail=PrometheusApiClientException(f"HTTP Status Code 500 (b'{body}')"))
    with pytest.raises(MetricsError) as err:
        source(fake).range("x", T0, at(1), MIN)
    assert str(err.value).endswith("x" * 300 + "...") and len(str(err.value)) < 400


def test_credentials_in_the_url_are_not_repeated_in_messages():
    fake = FakePrometheus(fail=requests.exceptions.ConnectionError("Connection refused"))
    src = PrometheusSource("https://user:s3cret@prom.test:9090/", client=fake)
    with pytest.raises(MetricsError) as err:
        src.range("x", T0, at(1), MIN)
    assert "s3cret" not in str(err.value)
    assert str(err.value).startswith("prometheus https://prom.test:9090: query 'x' failed")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"url": "prom.test:9090"}, "not an http"),
        ({"bearer_token": "t", "basic_auth": ("u", "p")}, "choose one"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "CA bundle /nonexistent/ca.pem: not found"),
        ({"timeout_s": 0}, "timeout must be positive"),
    ],
)
def test_constructor_refuses_bad_settings(kwargs, message):
    kwargs = {"url": URL, **kwargs}
    with pytest.raises(MetricsError, match=message):
        PrometheusSource(**kwargs)


def test_unknown_reducer_is_refused():
    with pytest.raises(ValueError, match="reducer must be one of sum, max, min, mean"):
        PrometheusSource(URL, reducer="median", client=FakePrometheus())  # type: ignore[arg-type]


def test_real_client_is_configured_from_the_options(tmp_path):
    from conftest import require_binary
    from support.prometheus import self_signed_certificate

    ca, _ = self_signed_certificate(tmp_path, require_binary("openssl", "install openssl (apt-get install -y openssl)"))
    src = PrometheusSource(URL, bearer_token="tok", ca_bundle=ca, timeout_s=7)
    client = src._client
    # credentials go through the session's auth hook (read on each request: rotated files)
    assert client.headers is None and client.auth is None
    assert client._session.auth.header() == "Bearer tok"
    assert client._session.verify == str(ca) and client._timeout == 7.0 and client._session.timeout_s == 7.0
    basic = PrometheusSource(URL, basic_auth=("u", "p"), insecure_skip_verify=True)._client
    assert basic._session.auth.header() == "Basic dTpw" and basic._session.verify is False  # base64("u:p")


# ------------------------------------------------------------------------------ instant


def vector(value, ts_s, **lbl):
    return {"metric": {"__name__": "sli", **lbl}, "value": [ts_s, value]}


def test_instant_returns_value_and_sample_time():
    fake = FakePrometheus(instant_answers={
        "sli": [vector("0.25", T0_S + 120)],
        "timestamp(sli)": [{"metric": {}, "value": [T0_S + 120, str(T0_S + 60)]}],
    })
    v = source(fake).instant("sli", at(2))
    assert v == InstantValue(0.25, at(1))
    assert [c[0] for c in fake.instant_calls] == ["sli", "timestamp(sli)"]
    assert fake.instant_calls[0][1] == {"time": f"{T0_S + 120}.000", "timeout": "30"}


def test_instant_of_an_expression_is_as_old_as_its_quietest_source():
    # sum()/rate() answer at the evaluation time: the age comes from each selector's newest sample
    q = 'sum(rate(req{job="a"}[5m])) / sum(rate(req_all[5m]))'
    fake = FakePrometheus(instant_answers={
        q: [{"metric": {}, "value": [T0_S + 600, "0.5"]}],
        'max(timestamp(req{job="a"}))': [{"metric": {}, "value": [T0_S + 600, str(T0_S + 590)]}],
        "max(timestamp(req_all))": [{"metric": {}, "value": [T0_S + 600, str(T0_S + 200)]}],
    })
    v = source(fake).instant(q, at(10))
    assert v == InstantValue(0.5, T0 + timedelta(seconds=200))
    assert [c[0] for c in fake.instant_calls] == [q, 'max(timestamp(req{job="a"}))', "max(timestamp(req_all))"]


def test_instant_without_result_is_none():
    fake = FakePrometheus()
    assert source(fake).instant("sli", T0) is None
    assert len(fake.instant_calls) == 1  # no timestamp() query for an empty answer


def test_instant_scalar_is_as_old_as_its_selectors_and_a_literal_is_now():
    # scalar() answers at the evaluation time like sum(): it once read as 0 s old (history sweep)
    fake = FakePrometheus(instant_answers={
        "scalar(sum(sli))": [T0_S + 600, "3"],
        "max(timestamp(sli))": [{"metric": {}, "value": [T0_S + 600, str(T0_S + 360)]}],
    })
    assert source(fake).instant("scalar(sum(sli))", at(10)) == InstantValue(3.0, at(6))
    # a literal has no selector: the evaluation time, nothing more asked
    fake = FakePrometheus(instant_answers={"scalar(vector(1))": [T0_S + 5, "+Inf"]})
    v = source(fake).instant("scalar(vector(1))", at(0) + timedelta(seconds=5))
    assert math.isnan(v.value) and v.timestamp == T0 + timedelta(seconds=5)
    assert len(fake.instant_calls) == 1
    # offset: its selectors' age is not its freshness, and timestamp() refuses a scalar: evaluation time
    fake = FakePrometheus(instant_answers={"scalar(sli offset 1m)": [T0_S + 600, "3"]})
    assert source(fake).instant("scalar(sli offset 1m)", at(10)) == InstantValue(3.0, at(10))
    assert [c[0] for c in fake.instant_calls] == ["scalar(sli offset 1m)"]


def test_instant_several_series_refused_or_reduced():
    answers = {
        "sli": [vector("1.5", T0_S, pod="a"), vector("2", T0_S, pod="b")],
        "timestamp(sli)": [{"metric": {"pod": "a"}, "value": [T0_S, str(T0_S - 30)]},
                           {"metric": {"pod": "b"}, "value": [T0_S, str(T0_S - 90)]}],
    }
    refused = r'returned 2 series, expected one: sli\{pod="a"\}; sli\{pod="b"\}'
    with pytest.raises(MetricsError, match=refused):
        source(FakePrometheus(instant_answers=answers)).instant("sli", T0)
    v = source(FakePrometheus(instant_answers=answers), reducer="max").instant("sli", T0)
    assert v == InstantValue(2.0, T0 - timedelta(seconds=90))  # oldest sample time counts


def test_instant_of_a_range_vector_says_so():
    fake = FakePrometheus(instant_answers={"sli[5m]": [{"metric": {}, "values": [[T0_S, "1"]]}]})
    with pytest.raises(MetricsError, match=r"query 'sli\[5m\]' failed: returned a range vector"):
        source(fake).instant("sli[5m]", T0)


def test_instant_refuses_naive_time():
    with pytest.raises(ValueError, match="zone"):
        source(FakePrometheus()).instant("sli", T0.replace(tzinfo=None))


# ---------------------------------------------------------------------- StaticMetricsSource


def five_min_series() -> Series:
    idx = grid(T0, T0 + timedelta(minutes=25), timedelta(minutes=5))
    return Series.from_pairs(idx, [1.0, 2.0, np.nan, 4.0, np.inf, 6.0], timedelta(minutes=5), "d")


def test_static_source_is_a_metrics_source():
    src: MetricsSource = StaticMetricsSource({})
    assert isinstance(src.range("q", T0, at(1), MIN), Series)


def test_static_range_same_grid_is_exact_and_inf_becomes_nan():
    src = StaticMetricsSource({"d": five_min_series()})
    s = src.range("d", T0, T0 + timedelta(minutes=25), timedelta(minutes=5))
    np.testing.assert_array_equal(s.values.to_numpy(), [1.0, 2.0, np.nan, 4.0, np.nan, 6.0])
    assert s.name == "d"


def test_static_range_finer_and_coarser_steps():
    src = StaticMetricsSource({"d": five_min_series()})
    # Finer: each 5-min point covers [ts, ts+5min): 0..4 min -> 1, 5..9 -> 2, 10 -> NaN.
    fine = src.range("d", T0, T0 + timedelta(minutes=10), MIN)
    np.testing.assert_array_equal(fine.values.to_numpy(), [1.0] * 5 + [2.0] * 5 + [np.nan])
    # Coarser: 10-min grid picks the points at 0, 10, 20 min; 30 min is past the data.
    coarse = src.range("d", T0, T0 + timedelta(minutes=30), timedelta(minutes=10))
    np.testing.assert_array_equal(coarse.values.to_numpy(), [1.0, np.nan, np.nan, np.nan])


def test_static_unknown_query_is_no_data():
    s = StaticMetricsSource({}).range("nope", T0, at(4), MIN)
    assert len(s) == 5 and not has_data(s)
    assert StaticMetricsSource({}).instant("nope", T0) is None


def test_static_instant_latest_finite_point_within_lookback():
    src = StaticMetricsSource({"d": five_min_series()})
    assert src.instant("d", T0 + timedelta(minutes=7)) == InstantValue(2.0, T0 + timedelta(minutes=5))
    # At 12 min the 10-min point is NaN: the 5-min point is 7 min old > lookback 5 min -> None.
    assert src.instant("d", T0 + timedelta(minutes=12)) is None
    # At 22 min the 20-min point is +Inf (skipped); 15-min point is 7 min old -> None.
    assert src.instant("d", T0 + timedelta(minutes=22)) is None
    assert src.instant("d", T0 + timedelta(minutes=26)) == InstantValue(6.0, T0 + timedelta(minutes=25))
    assert src.instant("d", T0 - MIN) is None
    wide = StaticMetricsSource({"d": five_min_series()}, lookback=timedelta(minutes=10))
    assert wide.instant("d", T0 + timedelta(minutes=12)) == InstantValue(2.0, T0 + timedelta(minutes=5))
