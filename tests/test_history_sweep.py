"""PrometheusSource against misbehaving HTTP servers: the fixes of the history sweep (2026-11-25).

Small local servers (threads on 127.0.0.1), no Prometheus needed. Cases:
- time limits: a 429 or 503 with `Retry-After: 20` is answered at once, one request (urllib3 slept
  it out, 3 times, and retried the 503); a Retry-After is honoured while it ends within the
  timeout; 429/502/504 are retried with backoff while the wait ends within it; a body sent a byte
  every half second is cut at `timeout_s`, and so are headers sent a byte at a time; the limit
  holds for a whole call (a long range's chunks, an instant's sample-time queries), not each
  request, and each request sends Prometheus the time the call has left; a connect timeout is not retried (a refused connect still is);
- rotated credentials: a bearer token file replaced on disk is sent from the next request; one
  rewritten with the same size and time is picked up after the 401 it causes (one retry), a 401
  with the file unchanged is not retried; a rotated password file likewise; a file gone bad
  fails the query naming the setting;
- redaction: a proxy echoing the Authorization header (bearer, basic) shows `<redacted>`, also
  when the secret straddles the excerpt's cut; nothing in the logs either;
- credentials requests cannot send: a non-latin-1 password is sent as UTF-8; a token file with a
  byte order mark works; a token with a line break or a non-ASCII character, an empty or
  non-UTF-8 token file are errors when the source is built, naming the setting and the file and
  never the token;
- reasons: a server closing without an answer says RemoteDisconnected and not the URL; a TLS
  hostname mismatch keeps the host name; a string result says so;
- partial answers: `warnings` are logged once per call (deduplicated across chunks), kept on
  InstantValue.warnings, and the controller notes a partial demand in the tick's problems and
  plans as usual.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from forecaster.history import InstantValue, MetricsError, PrometheusSource, SecretFile
from policies.schema import PrometheusSettings
from scaler.loop import prometheus_source
from support.prometheus import serve_in_thread

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
T0_S = int(T0.timestamp())
MIN = timedelta(minutes=1)
EMPTY_VECTOR = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
EMPTY_MATRIX = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
LONG_QUERY = 'sum by (region) (rate(http_requests_total{job="edge", route=~"/api/.*"}[5m]))'


class Seen:
    """What a test server received: one (path, headers) per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []

    def __len__(self) -> int:
        return len(self.requests)

    def auth(self) -> list[str]:
        return [h.get("Authorization", "") for _, h in self.requests]


Respond = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def server(respond: Respond, ssl_context: ssl.SSLContext | None = None) -> Iterator[tuple[str, Seen]]:
    """Serve `respond(handler)` for every request on a free 127.0.0.1 port; yields (URL, Seen)."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.requests.append((self.path, dict(self.headers.items())))
            try:
                respond(self)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: what we test
                pass

        def log_message(self, *args) -> None:
            pass

    with serve_in_thread(Handler, ssl_context) as url:
        yield url, seen


def reply(status: int, body: bytes, **headers: str) -> Respond:
    def respond(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/plain")
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.end_headers()
        h.wfile.write(body)
    return respond


def read_range(src: PrometheusSource, query: str = "up"):
    return src.range(query, T0, T0 + MIN, MIN)


# ------------------------------------------------------------------------------ time limits


@pytest.mark.parametrize("status", [429, 503])
def test_a_long_retry_after_is_not_waited_for_and_503_is_never_retried(status):
    with server(reply(status, b"Too Many Requests\n", Retry_After="20")) as (url, seen):
        started = time.monotonic()
        with pytest.raises(MetricsError) as err:
            read_range(PrometheusSource(url, timeout_s=2))
        took = time.monotonic() - started
    # before: urllib3 slept out Retry-After before each of 2 retries (40 s), 503 included
    assert len(seen) == 1 and took < 15
    assert err.value.status == status
    assert str(err.value).endswith(f"HTTP {status}: Too Many Requests (the server asked to retry after 20s; "
                                   f"not waited for, the timeout is 2s)")


def test_a_retry_after_is_honoured_only_while_it_ends_within_the_timeout():
    with server(reply(429, b"slow down\n", Retry_After="1")) as (url, seen):
        with pytest.raises(MetricsError, match="HTTP 429: slow down"):
            read_range(PrometheusSource(url, timeout_s=2))
    # the first answer, one retry a second later; a second wait would end past the 2 s (before: 3)
    assert len(seen) == 2


@pytest.mark.parametrize("status", [429, 502, 504])
def test_gateway_statuses_are_retried_with_backoff_within_the_timeout(status):
    with server(reply(status, b"busy\n")) as (url, seen):
        with pytest.raises(MetricsError, match=f"HTTP {status}: busy"):
            read_range(PrometheusSource(url, timeout_s=5))
    assert len(seen) == 3  # 2 retries, after 0.2 s and 0.4 s
    with server(reply(status, b"busy\n")) as (url, seen):
        with pytest.raises(MetricsError, match=f"HTTP {status}: busy"):
            read_range(PrometheusSource(url, timeout_s=0.5))
    assert len(seen) == 2  # the 0.4 s wait would end past 0.5 s: reported instead (before: 3)


def drip(h: BaseHTTPRequestHandler) -> None:
    """Headers at once, then the body a byte every half second (a read timeout restarts with each byte)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(EMPTY_MATRIX)))
    h.end_headers()
    h.wfile.flush()
    for i in range(len(EMPTY_MATRIX)):
        h.wfile.write(EMPTY_MATRIX[i:i + 1])
        h.wfile.flush()
        time.sleep(0.5)


def test_a_body_sent_a_byte_at_a_time_is_cut_at_the_timeout():
    with server(drip) as (url, seen):
        started = time.monotonic()
        with pytest.raises(MetricsError) as err:
            read_range(PrometheusSource(url, timeout_s=1))
        took = time.monotonic() - started
    # before: no error after 32 s (half a second per byte of the 63-byte answer)
    assert str(err.value) == f"prometheus {url}: query 'up' failed: timed out after 1s"
    assert took < 15 and len(seen) == 1


def trickled_headers(h: BaseHTTPRequestHandler) -> None:
    """The status line and headers a byte every 0.3 s (a read timeout restarts with each byte)."""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(EMPTY_MATRIX))
    for i in range(len(head)):
        h.wfile.write(head[i:i + 1])
        h.wfile.flush()
        time.sleep(0.3)
    h.wfile.write(EMPTY_MATRIX)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_headers_sent_a_byte_at_a_time_are_cut_at_the_timeout(tls, tmp_path):
    ctx, ca = None, None
    if tls:
        from conftest import require_binary
        from support.prometheus import self_signed_certificate

        openssl = require_binary("openssl", "install openssl (apt-get install -y openssl)")
        ca, key = self_signed_certificate(tmp_path, openssl)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ca, key)
    with server(trickled_headers, ssl_context=ctx) as (url, seen):
        started = time.monotonic()
        with pytest.raises(MetricsError) as err:
            read_range(PrometheusSource(url, timeout_s=1, ca_bundle=ca))
        took = time.monotonic() - started
    # before: 21 s, the 70 bytes of status line and headers at 0.3 s each, then "timed out"
    assert str(err.value) == f"prometheus {url}: query 'up' failed: timed out after 1s"
    assert took < 10 and len(seen) == 1


def slow_matrix(delay_s: float) -> Respond:
    """An empty range answer after `delay_s`, each time."""
    def respond(h: BaseHTTPRequestHandler) -> None:
        time.sleep(delay_s)
        reply(200, EMPTY_MATRIX)(h)
    return respond


def test_the_timeout_bounds_a_whole_range_call_not_each_of_its_chunks():
    with server(slow_matrix(0.4)) as (url, seen):
        # 10 minutes at 1 minute, 2 points per request: 5 chunks, 0.4 s each
        ok = PrometheusSource(url, timeout_s=30, max_points_per_query=2).range("up", T0, T0 + 9 * MIN, MIN)
        assert len(ok.values) == 10 and len(seen) == 5
        # each chunk asks Prometheus to stop at the time the call has left (it sent 30 each time)
        sent = [float(parse_qs(urlsplit(path).query)["timeout"][0]) for path, _ in seen.requests]
        assert sent == sorted(sent, reverse=True) and sent[0] == 30 and sent[-1] <= 29  # 28.4 s left, up
        started = time.monotonic()
        with pytest.raises(MetricsError) as err:
            PrometheusSource(url, timeout_s=1, max_points_per_query=2).range("up", T0, T0 + 9 * MIN, MIN)
        took = time.monotonic() - started
    # before: each chunk had its own second and the call took 2 s without an error
    assert str(err.value) == f"prometheus {url}: query 'up' failed: timed out after 1s"
    assert took < 5 and len(seen) - 5 <= 3  # the third chunk was cut at the latest; the rest not sent


def test_the_timeout_bounds_an_instant_call_with_its_sample_time_queries():
    vector = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"5"]}]}}' % T0_S

    def respond(h: BaseHTTPRequestHandler) -> None:
        time.sleep(0.5)
        reply(200, vector)(h)

    with server(respond) as (url, seen):
        # sum(a) / sum(b): the value, then one sample-time query per selector (3 requests, 1.5 s)
        assert PrometheusSource(url, timeout_s=30).instant("sum(a) / sum(b)", T0).value == 5.0
        assert len(seen) == 3
        with pytest.raises(MetricsError, match=r"failed: timed out after 1.2s$"):
            PrometheusSource(url, timeout_s=1.2).instant("sum(a) / sum(b)", T0)
        assert len(seen) - 3 <= 3  # before: 1.5 s, three requests of 0.5 s under 1.2 s each, no error


@pytest.fixture
def counted_connects(monkeypatch):
    """Replace urllib3's socket connect: `calls` counts attempts, `fail` is raised by each."""
    import urllib3.util.connection

    state = {"calls": 0, "fail": OSError("unset")}

    def connect(*args, **kwargs):
        state["calls"] += 1
        raise state["fail"]

    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)
    return state


def test_a_connect_timeout_is_not_retried_past_the_timeout_but_a_refusal_is(counted_connects):
    counted_connects["fail"] = socket.timeout("timed out")
    with pytest.raises(MetricsError) as err:
        read_range(PrometheusSource("http://prom.test:9090", timeout_s=2))
    assert str(err.value) == "prometheus http://prom.test:9090: query 'up' failed: timed out after 2s"
    assert counted_connects["calls"] == 1  # before: 3 attempts of 2 s each, the message saying 2s
    counted_connects["fail"] = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(MetricsError, match="failed: connection refused$"):
        read_range(PrometheusSource("http://prom.test:9090", timeout_s=5))
    assert counted_connects["calls"] == 1 + 3  # the request never reached a server: retried


# ----------------------------------------------------------------------- rotated credentials


def accepting(valid: set[str]) -> Respond:
    """200 when the Authorization header is one of `valid`, else 401."""
    def respond(h: BaseHTTPRequestHandler) -> None:
        ok = h.headers.get("Authorization", "") in valid
        reply(200 if ok else 401, EMPTY_MATRIX if ok else b"Unauthorized\n")(h)
    return respond


def test_a_rotated_token_file_is_used_without_a_restart(tmp_path):
    token = tmp_path / "token"
    token.write_text("token-v1\n")
    valid = {"Bearer token-v1"}
    with server(accepting(valid)) as (url, seen):
        src = prometheus_source(PrometheusSettings.model_validate({"url": url, "bearer_token_file": str(token)}))
        read_range(src)
        # the kubelet swaps the file: new content, new modification time
        token.write_text("token-v2\n")
        os.utime(token, ns=(time.time_ns() + 10**9,) * 2)
        valid.clear()
        valid.add("Bearer token-v2")
        read_range(src)  # before: HTTP 401 on every query until the policy changed or a restart
        # rewritten with the same size and the same times: only the 401 tells; re-read once, retried
        stat = token.stat()
        token.write_text("token-v3\n")
        os.utime(token, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        valid.clear()
        valid.add("Bearer token-v3")
        read_range(src)
        valid.clear()  # revoked, file unchanged: one 401, not retried
        with pytest.raises(MetricsError, match="HTTP 401: Unauthorized"):
            read_range(src)
    assert seen.auth() == ["Bearer token-v1", "Bearer token-v2", "Bearer token-v2", "Bearer token-v3",
                           "Bearer token-v3"]


def test_a_rotated_password_file_is_used(tmp_path):
    password = tmp_path / "password"
    password.write_text("first\n")
    basic = {"Basic " + base64.b64encode(b"ebbtide:first").decode()}
    with server(accepting(basic)) as (url, seen):
        settings = PrometheusSettings.model_validate(
            {"url": url, "basic_auth": {"username": "ebbtide", "password_file": str(password)}})
        src = prometheus_source(settings)
        read_range(src)
        password.write_text("second-longer\n")
        basic.clear()
        basic.add("Basic " + base64.b64encode(b"ebbtide:second-longer").decode())
        read_range(src)
    assert seen.auth()[-1] == "Basic " + base64.b64encode(b"ebbtide:second-longer").decode()


def test_a_token_file_gone_bad_after_a_rotation_fails_the_query_naming_the_file(tmp_path):
    token = tmp_path / "token"
    token.write_text("good\n")
    with server(accepting({"Bearer good"})) as (url, _):
        src = PrometheusSource(url, bearer_token=SecretFile(token, "prometheus.bearer_token_file"))
        read_range(src)
        token.write_text("line-one\nline-two\n")
        with pytest.raises(MetricsError) as err:
            read_range(src)
    assert str(err.value) == (f"prometheus {url}: query 'up' failed: prometheus.bearer_token_file: {token}: "
                              f"the token holds a line break: a bearer token is a single line")


# ------------------------------------------------------------------------------- redaction


def echo_authorization(h: BaseHTTPRequestHandler) -> None:
    """A proxy that repeats the request's Authorization header in its 401 body (some do)."""
    reply(401, f"denied: Authorization: {h.headers.get('Authorization')}".encode())(h)


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_an_echoed_authorization_header_is_redacted(auth, caplog):
    caplog.set_level(logging.DEBUG)
    token, password = "SECRET-TOKEN-abc123", "hunter2-pw"
    kwargs = {"bearer_token": token} if auth == "token" else {"basic_auth": ("alice", password)}
    with server(echo_authorization) as (url, _):
        with pytest.raises(MetricsError) as err:
            read_range(PrometheusSource(url, **kwargs), LONG_QUERY)
    msg = str(err.value)
    basic_b64 = base64.b64encode(f"alice:{password}".encode()).decode()
    for secret in (token, password, basic_b64):
        assert secret not in msg and secret not in caplog.text
    assert msg.endswith("HTTP 401: denied: Authorization: " + ("Bearer" if auth == "token" else "Basic")
                        + " <redacted>")


def test_a_secret_straddling_the_excerpts_cut_is_not_shown_in_part():
    token = "SECRET-TOKEN-abc123-0123456789"
    body = ("x" * 290 + " " + token).encode()  # the 300-character cut falls inside the token
    with server(reply(500, body)) as (url, _):
        with pytest.raises(MetricsError) as err:
            read_range(PrometheusSource(url, bearer_token=token))
    assert "SECRET-TO" not in str(err.value) and str(err.value).endswith(" <redacted...")  # redacted, then cut


# ------------------------------------------------------------- credentials requests cannot send


def test_a_password_outside_latin1_is_sent_as_utf8():
    with server(reply(200, EMPTY_MATRIX)) as (url, seen):
        # before: "the answer is not a Prometheus API response" (requests encodes str credentials as latin-1)
        read_range(PrometheusSource(url, basic_auth=("bob", "pässwörd€")))
    assert seen.auth() == ["Basic " + base64.b64encode("bob:pässwörd€".encode("utf-8")).decode()]


def test_a_token_file_with_a_byte_order_mark_is_read_without_it(tmp_path):
    token = tmp_path / "token"
    token.write_bytes("\ufeffgood-token-123\r\n".encode("utf-8"))
    with server(reply(200, EMPTY_MATRIX)) as (url, seen):
        settings = PrometheusSettings.model_validate({"url": url, "bearer_token_file": str(token)})
        read_range(prometheus_source(settings))
    assert seen.auth() == ["Bearer good-token-123"]


@pytest.mark.parametrize("content, problem", [
    ("tok-SECRET\nsecond-line\n".encode(), "the token holds a line break: a bearer token is a single line"),
    ("tök-SECRET".encode(), "the token holds a non-ASCII character (character 2): a bearer token is ASCII"),
    ("tok SECRET".encode(), "the token holds a space or a tab (character 4): a bearer token is a single word"),
    (b"\n", "the token is empty"),
])
def test_a_token_file_that_cannot_be_sent_is_an_error_when_the_source_is_built(tmp_path, content, problem):
    from policies.errors import EbbtideError

    token = tmp_path / "token"
    token.write_bytes(content)
    settings = PrometheusSettings.model_validate({"url": "http://prom.test:9090", "bearer_token_file": str(token)})
    with pytest.raises(EbbtideError) as err:
        prometheus_source(settings)
    assert str(err.value) == f"prometheus.bearer_token_file: {token}: {problem}"
    assert "SECRET" not in str(err.value)


def test_a_token_file_that_is_not_utf8_is_named(tmp_path):
    token = tmp_path / "token"
    token.write_bytes(b"\xff\xfet\x00o\x00k\x00")  # UTF-16, as some editors save
    with pytest.raises(MetricsError) as err:
        PrometheusSource("http://prom.test:9090", bearer_token=SecretFile(token, "prometheus.bearer_token_file"))
    assert str(err.value) == f"prometheus.bearer_token_file: {token} is not UTF-8 text"


def test_a_token_string_that_cannot_be_sent_is_refused_without_repeating_it():
    with pytest.raises(MetricsError) as err:
        PrometheusSource("http://prom.test:9090", bearer_token="tok-SECRET\nsecond-line")
    assert str(err.value) == ("prometheus http://prom.test:9090: the bearer token holds a line break: "
                              "a bearer token is a single line")


# --------------------------------------------------------------------------------- reasons


@pytest.fixture
def closing_server() -> Iterator[str]:
    """Accepts, reads the request, closes without an answer (a draining load balancer)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


def test_a_connection_closed_without_an_answer_names_the_cause_not_the_url(closing_server):
    with pytest.raises(MetricsError) as err:
        read_range(PrometheusSource(closing_server, timeout_s=2), LONG_QUERY)
    # before: "cannot connect: HTTPConnectionPool(...): Max retries exceeded with url:
    # /api/v1/query_range?query=sum+by..." (200 characters of urllib3's text, the cause cut off)
    assert str(err.value) == (f"prometheus {closing_server}: query {LONG_QUERY!r} failed: no answer: the server "
                              f"closed the connection without a response (RemoteDisconnected)")
    # the controller counts it as the server failing (the tick stops querying it), as it did
    # while the reason read "cannot connect"
    from scaler.controller import _unreachable

    assert _unreachable(err.value)


def test_a_tls_hostname_mismatch_keeps_the_host_name(tmp_path):
    from conftest import require_binary
    from support.prometheus import self_signed_certificate

    openssl = require_binary("openssl", "install openssl (apt-get install -y openssl)")
    cert, key = self_signed_certificate(tmp_path, openssl)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with server(reply(200, EMPTY_MATRIX), ssl_context=ctx) as (url, _):
        by_name = url.replace("127.0.0.1", "localhost")  # the certificate is for IP 127.0.0.1 only
        with pytest.raises(MetricsError) as err:
            read_range(PrometheusSource(by_name, ca_bundle=cert))
    assert str(err.value).endswith("failed: TLS error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                   "Hostname mismatch, certificate is not valid for 'localhost'.")


def test_a_string_result_says_so():
    body = json.dumps({"status": "success", "data": {"resultType": "string", "result": [T0_S, "hello"]}}).encode()
    with server(reply(200, body)) as (url, _):
        with pytest.raises(MetricsError) as err:
            PrometheusSource(url).instant('"hello"', T0)
    assert str(err.value) == (f"prometheus {url}: query '\"hello\"' failed: returned a string result ('hello'), "
                              f"not a number: a demand or SLI query must give a number")


# ------------------------------------------------------------------------- partial answers


PARTIAL = "partial response: store 10.0.0.7:10901 (eu-west) unavailable"


def with_warnings(result_type: str, result) -> bytes:
    return json.dumps({"status": "success", "warnings": [PARTIAL],
                       "data": {"resultType": result_type, "result": result}}).encode()


def test_range_warnings_are_logged_once_per_call(caplog):
    body = with_warnings("matrix", [{"metric": {}, "values": [[T0_S + 60 * i, "120"] for i in range(3)]}])
    with server(reply(200, body)) as (url, seen):
        with caplog.at_level(logging.WARNING, logger="forecaster.history"):
            s = PrometheusSource(url, max_points_per_query=2).range("sum(rate(x[5m]))", T0, T0 + 2 * MIN, MIN)
    assert len(seen) == 2 and list(s.values) == [120.0] * 3  # two chunks, each with the warning
    (record,) = [r for r in caplog.records if r.name == "forecaster.history"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (f"prometheus {url}: query 'sum(rate(x[5m]))': the server warned that the answer "
                                   f"may be incomplete: {PARTIAL}")


def test_instant_warnings_are_kept_on_the_value(caplog):
    body = with_warnings("vector", [{"metric": {}, "value": [T0_S, "120"]}])
    with server(reply(200, body)) as (url, _):
        with caplog.at_level(logging.WARNING, logger="forecaster.history"):
            v = PrometheusSource(url).instant("sum(rate(x[5m]))", T0)
    assert v is not None and v.value == 120.0 and v.warnings == (PARTIAL,)
    assert PARTIAL in caplog.text
    without = json.dumps({"status": "success", "data": {"resultType": "vector",
                                                        "result": [{"metric": {}, "value": [T0_S, "1"]}]}}).encode()
    with server(reply(200, without)) as (url, _):
        assert PrometheusSource(url).instant("up", T0).warnings == ()


def test_the_controller_notes_a_partial_demand_and_plans_as_usual():
    import controller_fakes as f
    from forecaster.history import StaticMetricsSource
    from scaler.controller import Controller, LiveForecasterCache

    class Partial(StaticMetricsSource):
        def instant(self, query, at):
            v = super().instant(query, at)
            return InstantValue(v.value, v.timestamp, (PARTIAL,)) if query == f.DEMAND_Q and v is not None else v

    outcomes = []
    for source in (f.flat_source(3000), Partial(f.flat_source(3000)._series)):
        cluster = f.FakeCluster({"edge": 10})
        c = Controller(f.Clock(), source, cluster, LiveForecasterCache(f.factory_of(f.ConstantModel)))
        outcomes.append((c.tick(f.make_policy(), dry_run=False, fit=True).outcomes[0], cluster.applies))
    (plain, plain_applies), (partial, partial_applies) = outcomes
    assert partial_applies == plain_applies == [("edge", 33, False)] and not partial.held
    assert [p for p in partial.problems if p not in plain.problems] == [
        f"demand query {f.DEMAND_Q!r}: Prometheus warned the answer may be partial: {PARTIAL}"]
