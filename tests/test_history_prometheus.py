"""PrometheusSource against a real Prometheus (backfilled with promtool) and a stub HTTP API.

Real server (mark `prometheus`, one server for the module, one xdist worker):
- 28 days at 5 min round-trips exactly (one request);
- 11 days at 1 min: a single request is refused by the server (HTTP 400, 11,000 points), the
  chunked read returns every point exactly once, exact values across the chunk boundary;
- the 28 days read in many small chunks equals the data;
- gaps come back as NaN (Prometheus may carry a sample up to 5 min: the boundary point);
- NaN/+Inf/-Inf samples come back as NaN;
- several series -> MetricsError naming query, server and label sets; with reducer=sum the
  point-by-point sum;
- a query matching nothing -> the full grid, all NaN (has_data False); instant -> None;
- instant: newest value with its sample time; nothing after the 5-minute lookback; an
  aggregate, a ratio and a scalar(...) are stamped with their selectors' newest samples, a
  literal with the evaluation time;
- bad PromQL -> MetricsError with HTTP 400 and the server's message;
- a stopped server -> MetricsError "connection refused" naming query and server.
Stub HTTP API (no Prometheus needed):
- bearer token and basic auth headers are sent; explicit start/end/step/timeout parameters;
- the policy's credential files (as the chart mounts them) are read by scaler.loop's
  `prometheus_source` and sent (a token file's trailing newline dropped); a file that cannot be
  read is an EbbtideError naming the policy field and the path;
- a slow server -> "timed out" after the configured timeout, not retried;
- a 200 answer that is not the Prometheus API -> MetricsError; a Prometheus-shaped answer whose
  result is malformed (a proxy, another TSDB) -> MetricsError naming the query and what is wrong;
- TLS: a self-signed server is refused by default, accepted with its CA bundle or when
  verification is switched off.
"""

from __future__ import annotations

import base64
import ssl
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from forecaster.history import MetricsError, PrometheusSource, has_data, plan_chunks
from support.prometheus import (
    MetricSeries,
    StubAnswer,
    self_signed_certificate,
    stub_prometheus_api,
)

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
T0_S = int(T0.timestamp())
MIN = timedelta(minutes=1)
FIVE_MIN = timedelta(minutes=5)

real_server = [pytest.mark.prometheus, pytest.mark.xdist_group("prometheus-history")]


def values(n: int, seed: int) -> np.ndarray:
    """Demand-like floats with full binary precision (exactness is tested, not rounding)."""
    rng = np.random.default_rng(seed)
    daily = 1 + 0.6 * np.sin(np.arange(n) * 2 * np.pi / (86400 / 300))
    return 1000 * daily + rng.normal(0, 37, n)


class Data:
    """The series backfilled into the module's server (all fixed, generated once)."""

    n_5m = 28 * 288                      # 28 d at 5 min = 8,064 points from T0
    v_5m = values(n_5m, 1)
    start_1m = T0 + timedelta(days=14)
    n_1m = 11 * 1440                     # 11 d at 1 min = 15,840 points: two 11,000-point chunks
    v_1m = values(n_1m, 2)
    start_gappy = T0 + timedelta(days=1)
    n_gappy = 288
    v_gappy = values(n_gappy, 3)
    missing_gappy = set(range(100, 124)) | {200}   # a 2 h gap and one lost sample
    start_nonfinite = T0 + timedelta(days=3)
    v_nonfinite = [1.0, 2.0, 3.0, float("nan"), 5.0, float("inf"), 7.0, float("-inf"), 9.0, 10.0]
    start_multi = T0 + timedelta(days=2)
    n_multi = 288
    v_multi_a = values(n_multi, 4)
    v_multi_b = values(n_multi, 5)


def epoch_grid(start: datetime, n: int, step: timedelta) -> list[float]:
    return [start.timestamp() + i * step.total_seconds() for i in range(n)]


@pytest.fixture(scope="module")
def prom(prometheus_factory):
    g = [i for i in range(Data.n_gappy) if i not in Data.missing_gappy]
    gappy_ts = epoch_grid(Data.start_gappy, Data.n_gappy, FIVE_MIN)
    series = [
        MetricSeries("ebb_demand_5m", {"job": "edge"}, epoch_grid(T0, Data.n_5m, FIVE_MIN), list(Data.v_5m)),
        MetricSeries("ebb_demand_1m", {"job": "edge"}, epoch_grid(Data.start_1m, Data.n_1m, MIN),
                     list(Data.v_1m)),
        MetricSeries("ebb_gappy", {}, [gappy_ts[i] for i in g], [Data.v_gappy[i] for i in g]),
        MetricSeries("ebb_nonfinite", {}, epoch_grid(Data.start_nonfinite, 10, FIVE_MIN), Data.v_nonfinite),
        MetricSeries("ebb_multi", {"pod": "a"}, epoch_grid(Data.start_multi, Data.n_multi, FIVE_MIN),
                     list(Data.v_multi_a)),
        MetricSeries("ebb_multi", {"pod": "b"}, epoch_grid(Data.start_multi, Data.n_multi, FIVE_MIN),
                     list(Data.v_multi_b)),
    ]
    return prometheus_factory(series, name="history")


def last_point(start: datetime, n: int, step: timedelta) -> datetime:
    return start + (n - 1) * step


@pytest.mark.usefixtures("prom")
class TestRealPrometheus:
    pytestmark = real_server

    def test_28_days_at_5_min_round_trip_exactly(self, prom):
        end = last_point(T0, Data.n_5m, FIVE_MIN)
        assert len(plan_chunks(T0, end, FIVE_MIN)) == 1
        s = PrometheusSource(prom.url).range("ebb_demand_5m", T0, end, FIVE_MIN)
        assert len(s) == Data.n_5m and s.index[0] == T0 and s.index[-1] == end
        np.testing.assert_array_equal(s.values.to_numpy(), Data.v_5m)

    def test_11_days_at_1_min_need_chunks_and_come_back_exactly(self, prom):
        start, end = Data.start_1m, last_point(Data.start_1m, Data.n_1m, MIN)
        chunks = plan_chunks(start, end, MIN)
        assert len(chunks) == 2 and chunks[1][0] == chunks[0][1] + MIN
        with pytest.raises(MetricsError, match="HTTP 400: bad_data: exceeded maximum resolution of 11,000"):
            PrometheusSource(prom.url, max_points_per_query=20_000).range("ebb_demand_1m", start, end, MIN)
        s = PrometheusSource(prom.url).range("ebb_demand_1m", start, end, MIN)
        assert len(s) == Data.n_1m and not s.index.has_duplicates
        np.testing.assert_array_equal(s.values.to_numpy(), Data.v_1m)
        boundary = [10_998, 10_999, 11_000, 11_001]
        np.testing.assert_array_equal(s.values.to_numpy()[boundary], Data.v_1m[boundary])

    def test_many_small_chunks_equal_the_data(self, prom):
        end = last_point(T0, Data.n_5m, FIVE_MIN)
        src = PrometheusSource(prom.url, max_points_per_query=997)
        assert len(plan_chunks(T0, end, FIVE_MIN, 997)) == 9
        s = src.range("ebb_demand_5m", T0, end, FIVE_MIN)
        assert len(s) == Data.n_5m and not s.index.has_duplicates
        np.testing.assert_array_equal(s.values.to_numpy(), Data.v_5m)

    def test_gaps_come_back_as_nan(self, prom):
        # One hour past the data's end as well: nothing there.
        end = last_point(Data.start_gappy, Data.n_gappy, FIVE_MIN) + timedelta(hours=1)
        s = PrometheusSource(prom.url).range("ebb_gappy", Data.start_gappy, end, FIVE_MIN)
        got = s.values.to_numpy()
        assert len(got) == Data.n_gappy + 12
        present = [i for i in range(Data.n_gappy) if i not in Data.missing_gappy]
        np.testing.assert_array_equal(got[present], Data.v_gappy[present])
        # More than 5 min after the last sample: NaN.
        assert np.isnan(got[101:124]).all() and np.isnan(got[Data.n_gappy + 1:]).all()
        # Exactly 5 min after a sample: Prometheus 2.x still sees it (inclusive lookback),
        # 3.x does not. Either is fine; anything else is not.
        for k in (100, 200, Data.n_gappy):
            assert np.isnan(got[k]) or got[k] == Data.v_gappy[k - 1]

    def test_nan_and_inf_samples_come_back_as_nan(self, prom):
        end = last_point(Data.start_nonfinite, 10, FIVE_MIN)
        s = PrometheusSource(prom.url).range("ebb_nonfinite", Data.start_nonfinite, end, FIVE_MIN)
        expected = [np.nan if not np.isfinite(v) else v for v in Data.v_nonfinite]
        np.testing.assert_array_equal(s.values.to_numpy(), expected)

    def test_several_series_are_refused_naming_query_and_labels(self, prom):
        end = last_point(Data.start_multi, Data.n_multi, FIVE_MIN)
        with pytest.raises(MetricsError) as err:
            PrometheusSource(prom.url).range("ebb_multi", Data.start_multi, end, FIVE_MIN)
        msg = str(err.value)
        assert msg.startswith(f"prometheus {prom.url}: query 'ebb_multi' failed: returned 2 series")
        assert 'ebb_multi{pod="a"}' in msg and 'ebb_multi{pod="b"}' in msg and "sum(ebb_multi)" in msg

    def test_reducer_sum_adds_the_series(self, prom):
        end = last_point(Data.start_multi, Data.n_multi, FIVE_MIN)
        s = PrometheusSource(prom.url, reducer="sum").range("ebb_multi", Data.start_multi, end, FIVE_MIN)
        np.testing.assert_array_equal(s.values.to_numpy(), Data.v_multi_a + Data.v_multi_b)

    def test_query_matching_nothing_is_no_data_not_a_crash(self, prom):
        src = PrometheusSource(prom.url)
        s = src.range("ebb_no_such_metric", T0, T0 + timedelta(hours=2), FIVE_MIN)
        assert len(s) == 25 and not has_data(s)
        assert src.instant("ebb_no_such_metric", T0 + timedelta(hours=1)) is None

    def test_instant_returns_the_newest_value_and_its_sample_time(self, prom):
        src = PrometheusSource(prom.url)
        last = last_point(T0, Data.n_5m, FIVE_MIN)
        v = src.instant("ebb_demand_5m", last + timedelta(minutes=2))
        assert v is not None and v.value == Data.v_5m[-1] and v.timestamp == last
        mid = T0 + 100 * FIVE_MIN + timedelta(minutes=3)
        v = src.instant("ebb_demand_5m", mid)
        assert v is not None and v.value == Data.v_5m[100] and v.timestamp == T0 + 100 * FIVE_MIN
        # Beyond Prometheus's 5-minute lookback: nothing.
        assert src.instant("ebb_demand_5m", last + timedelta(minutes=10)) is None

    def test_instant_of_an_expression_is_stamped_with_its_sources_samples(self, prom):
        # `timestamp(sum(x))` is the evaluation time, however old x's samples: a stale metric
        # behind sum() or rate() once read as fresh (a scale-in and a bitrate cut on stale data)
        last = last_point(Data.start_multi, Data.n_multi, FIVE_MIN)
        at = last + timedelta(minutes=4)
        src = PrometheusSource(prom.url)
        v = src.instant("sum(ebb_multi)", at)
        assert v is not None and v.value == Data.v_multi_a[-1] + Data.v_multi_b[-1]
        assert v.timestamp == last
        ratio = src.instant('sum(ebb_multi{pod="a"}) / sum(ebb_multi)', at)
        assert ratio is not None and ratio.timestamp == last
        assert src.instant("vector(1)", at).timestamp == at  # a literal has no sources
        # a scalar answer too (it once read as 0 s old: history sweep); a scalar literal is "now"
        scalar = src.instant("scalar(sum(ebb_multi))", at)
        assert scalar is not None and scalar.value == Data.v_multi_a[-1] + Data.v_multi_b[-1]
        assert scalar.timestamp == last
        assert src.instant('scalar(ebb_multi{pod="a"})', at).timestamp == last
        assert src.instant("scalar(vector(2))", at).timestamp == at

    def test_bad_promql_is_an_http_400_with_the_servers_message(self, prom):
        with pytest.raises(MetricsError) as err:
            PrometheusSource(prom.url).range("sum(rate(x[5m])", T0, T0 + timedelta(hours=1), FIVE_MIN)
        msg = str(err.value)
        assert msg.startswith(f"prometheus {prom.url}: query 'sum(rate(x[5m])' failed: HTTP 400: bad_data:")
        assert "parse error" in msg and err.value.status == 400


@pytest.mark.prometheus
@pytest.mark.xdist_group("prometheus-history")
def test_a_stopped_server_is_a_metrics_error_naming_query_and_server(prometheus_factory):
    server = prometheus_factory(name="stopped")
    src = PrometheusSource(server.url)  # default retries: refused every time
    assert not has_data(src.range("up", T0, T0 + timedelta(minutes=10), MIN))  # it was up
    server.stop()
    query = "sum(rate(x[5m]))"
    for call in (lambda: src.range(query, T0, T0 + timedelta(hours=1), MIN), lambda: src.instant(query, T0)):
        with pytest.raises(MetricsError) as err:
            call()
        assert str(err.value) == f"prometheus {server.url}: query {query!r} failed: connection refused"


# -------------------------------------------------------------------------- stub HTTP API


def params_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


def test_bearer_token_and_explicit_parameters_are_sent():
    with stub_prometheus_api() as (url, seen):
        src = PrometheusSource(url, bearer_token="s3cr3t-token", timeout_s=12)
        s = src.range("sum(rate(x[5m]))", T0, T0 + timedelta(minutes=10), FIVE_MIN)
    assert not has_data(s)
    assert len(seen) == 1 and seen[0].headers["Authorization"] == "Bearer s3cr3t-token"
    assert urlsplit(seen[0].path).path == "/api/v1/query_range"
    assert params_of(seen[0].path) == {
        "query": ["sum(rate(x[5m]))"], "start": [str(T0_S)], "end": [str(T0_S + 600)],
        "step": ["300s"], "timeout": ["12"],
    }


def test_basic_auth_header_is_sent():
    answer = StubAnswer(body=b'{"status":"success","data":{"resultType":"vector","result":[]}}')
    with stub_prometheus_api(answer) as (url, seen):
        assert PrometheusSource(url, basic_auth=("ebbtide", "pa:ss")).instant("up", T0) is None
    expected = "Basic " + base64.b64encode(b"ebbtide:pa:ss").decode()
    assert seen[0].headers["Authorization"] == expected
    assert params_of(seen[0].path)["time"] == [f"{T0_S}.000"]


def test_the_policy_credential_files_are_read_and_sent(tmp_path):
    from policies.schema import PrometheusSettings
    from scaler.loop import prometheus_source

    token = tmp_path / "token"
    token.write_text("tok-from-a-secret\n")  # a mounted Secret usually ends in a newline
    password = tmp_path / "password"
    password.write_text("pa:ss\n")
    answer = StubAnswer(body=b'{"status":"success","data":{"resultType":"vector","result":[]}}')
    with stub_prometheus_api(answer) as (url, seen):
        by_token = PrometheusSettings.model_validate({"url": url, "bearer_token_file": str(token)})
        assert prometheus_source(by_token).instant("up", T0) is None
        by_password = PrometheusSettings.model_validate(
            {"url": "http://unused.invalid:9090", "basic_auth": {"username": "ebbtide", "password_file": str(password)}})
        assert prometheus_source(by_password, url=url).instant("up", T0) is None  # the url argument wins
    assert [r.headers["Authorization"] for r in seen] == [
        "Bearer tok-from-a-secret", "Basic " + base64.b64encode(b"ebbtide:pa:ss").decode()]


def test_an_unreadable_credential_file_names_the_field_and_the_path(tmp_path):
    from policies.errors import EbbtideError
    from policies.schema import PrometheusSettings
    from scaler.loop import prometheus_source

    gone = tmp_path / "no-such-token"
    cases = [({"bearer_token_file": str(gone)}, "prometheus.bearer_token_file"),
             ({"basic_auth": {"username": "u", "password_file": str(gone)}}, "prometheus.basic_auth.password_file")]
    for fields, field in cases:
        with pytest.raises(EbbtideError) as err:
            prometheus_source(PrometheusSettings.model_validate(fields))
        assert str(err.value) == f"{field}: cannot read {gone}: No such file or directory"
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(EbbtideError) as err:  # a CA bundle TLS cannot load: the field, not each query's TLS error
        prometheus_source(PrometheusSettings.model_validate({"url": "https://prom.test", "ca_file": str(junk)}))
    assert str(err.value) == (f"prometheus.ca_file: {junk}: TLS cannot load it "
                              "(NO_CERTIFICATE_OR_CRL_FOUND: no PEM certificate in it)")


def test_a_slow_server_times_out_once_without_retries():
    with stub_prometheus_api(StubAnswer(delay_s=3.0)) as (url, seen):
        with pytest.raises(MetricsError) as err:
            PrometheusSource(url, timeout_s=0.3).range("up", T0, T0 + MIN, MIN)
    assert str(err.value) == f"prometheus {url}: query 'up' failed: timed out after 0.3s"
    assert len(seen) == 1


def test_an_answer_that_is_not_the_prometheus_api_is_an_error():
    page = StubAnswer(body=b"<html>Grafana</html>", content_type="text/html")
    with stub_prometheus_api(page) as (url, _):
        with pytest.raises(MetricsError, match="not a Prometheus API response"):
            PrometheusSource(url).range("up", T0, T0 + MIN, MIN)


def _answer(result_type: str, result) -> StubAnswer:
    import json

    return StubAnswer(body=json.dumps({"status": "success", "data": {"resultType": result_type,
                                                                     "result": result}}).encode())


@pytest.mark.parametrize("kind, answer, what", [
    ("range", _answer("matrix", {"not": "a list"}), "expected a range result (matrix), got dict"),
    ("range", _answer("matrix", [{"metric": {}, "values": [["soon", "1"]]}]), "malformed range result"),
    ("range", _answer("matrix", [{"metric": {}}]), "malformed range result"),
    ("instant", _answer("scalar", [T0_S, "many"]), "malformed scalar result"),
    ("instant", _answer("vector", [{"metric": {}}]), "malformed instant result"),
    ("instant", _answer("vector", {"not": "a list"}), "expected an instant result (vector), got dict"),
])
def test_a_malformed_result_is_an_error_naming_the_query(kind, answer, what):
    query = "sum(rate(x[5m]))"
    with stub_prometheus_api(answer) as (url, _):
        src = PrometheusSource(url)
        with pytest.raises(MetricsError) as err:
            if kind == "range":
                src.range(query, T0, T0 + FIVE_MIN, FIVE_MIN)
            else:
                src.instant(query, T0)
    assert str(err.value).startswith(f"prometheus {url}: query {query!r} ") and what in str(err.value)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_needs_the_ca_bundle_or_insecure(tmp_path):
    from conftest import require_binary

    openssl = require_binary("openssl", "install openssl (apt-get install -y openssl)")
    cert, key = self_signed_certificate(tmp_path, openssl)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with stub_prometheus_api(ssl_context=ctx) as (url, seen):
        assert url.startswith("https://")
        refused = (
            r"query 'up' failed: TLS error: \[SSL: CERTIFICATE_VERIFY_FAILED\] .*self-signed certificate$"
        )
        with pytest.raises(MetricsError, match=refused):
            PrometheusSource(url, retries=0).range("up", T0, T0 + MIN, MIN)
        assert not has_data(PrometheusSource(url, ca_bundle=cert).range("up", T0, T0 + MIN, MIN))
        assert not has_data(PrometheusSource(url, insecure_skip_verify=True).range("up", T0, T0 + MIN, MIN))
    assert len(seen) == 2  # the refused handshake never became a request
