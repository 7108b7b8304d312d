"""A real Prometheus for tests: write OpenMetrics, backfill it with promtool, start, stop.

Typical use (the `prometheus_factory` fixture does all of it and stops every server it started,
also when a test fails):

    server = prometheus_factory([MetricSeries("demand", {"job": "edge"}, ts_s, values)])
    PrometheusSource(server.url).range("demand", start, end, step)

Facts this relies on (see /work/shared/docs/COMPONENTS.md):
- OpenMetrics timestamps are in SECONDS; each family has `# TYPE name gauge|counter` (counter
  samples are named `name_total`); the file ends with `# EOF`. Values may be NaN/+Inf/-Inf.
- `promtool tsdb create-blocks-from openmetrics --max-block-duration=D FILE DIR`: the default
  block size (2h) is slow; 24h is ~10x faster and 168h another ~10x (BACKFILL_BLOCK_DURATION).
- The server gets every path explicit and `--storage.tsdb.retention.time=3650d` (the default 15 d
  deletes backfilled blocks older than 15 days at start-up); it listens on a free 127.0.0.1 port
  and is ready when /-/ready answers 200 (~0.2 s).
- Prometheus evaluates a sample for up to 5 minutes after its timestamp (lookback delta,
  inclusive at both ends in 2.x): an instant query at `t` sees the newest sample in [t-5m, t].
"""

from __future__ import annotations

import atexit
import math
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Mapping, Sequence

import numpy as np
import pytest

PROMETHEUS_HINT = "install the Debian package: apt-get install -y --no-install-recommends prometheus"


@dataclass(frozen=True)
class MetricSeries:
    """One time series to backfill.

    `name`: metric name (for kind="counter" it must end in `_total`; the family is the name
    without it). `labels`: label name -> value. `timestamps_s`: epoch SECONDS, strictly
    increasing. `values`: floats, same length; NaN/Inf are written as NaN/+Inf/-Inf samples
    (use `from_series` to turn NaN into missing samples instead).
    """

    name: str
    labels: Mapping[str, str]
    timestamps_s: Sequence[float]
    values: Sequence[float]
    kind: Literal["gauge", "counter"] = "gauge"

    def __post_init__(self) -> None:
        if len(self.timestamps_s) != len(self.values):
            raise ValueError(
                f"{self.name}: {len(self.timestamps_s)} timestamps but {len(self.values)} values")
        if np.any(np.diff(np.asarray(self.timestamps_s, dtype=float)) <= 0):
            raise ValueError(f"{self.name}: timestamps must be strictly increasing")
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"{self.name}: a counter's samples are named <family>_total")

    @property
    def family(self) -> str:
        return self.name[: -len("_total")] if self.kind == "counter" else self.name

    @classmethod
    def from_series(cls, name: str, series, labels: Mapping[str, str] | None = None) -> "MetricSeries":
        """From a forecaster.series.Series; its NaN points (missing data) are not written."""
        v = series.values.dropna()
        ts_s = (v.index.as_unit("ns").asi8 // 1_000_000_000).astype(float)
        return cls(name, dict(labels or {}), list(ts_s), list(v.to_numpy(dtype=float)))


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_number(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)  # shortest text that round-trips exactly


def _format_timestamp(t: float) -> str:
    t = float(t)
    return str(int(t)) if t.is_integer() else repr(t)


def openmetrics_lines(series: Iterable[MetricSeries]) -> Iterator[str]:
    """OpenMetrics text lines for `series`, grouped by family, ending with `# EOF`."""
    by_family: dict[str, list[MetricSeries]] = {}
    kinds: dict[str, str] = {}
    for s in series:
        if kinds.setdefault(s.family, s.kind) != s.kind:
            raise ValueError(f"{s.family}: mixed gauge and counter series in one family")
        by_family.setdefault(s.family, []).append(s)
    for family, members in by_family.items():
        yield f"# TYPE {family} {kinds[family]}"
        for s in members:
            labels = ",".join(f'{k}="{_escape_label_value(str(v))}"' for k, v in sorted(s.labels.items()))
            head = f"{s.name}{{{labels}}}" if labels else s.name
            for t, v in zip(s.timestamps_s, s.values):
                yield f"{head} {_format_number(v)} {_format_timestamp(t)}"
    yield "# EOF"


def write_openmetrics(path: str | Path, series: Iterable[MetricSeries]) -> Path:
    """Write `series` as an OpenMetrics file for promtool; returns the path."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as f:
        for line in openmetrics_lines(series):
            f.write(line)
            f.write("\n")
    return p


#: promtool's block size for backfills. Fewer, longer blocks are much faster to write: 28 d at
#: 5 min (8,064 samples) took 3.7 s with 24h, 0.87 s with 72h, 0.30 s with 168h (one run each,
#: this machine); the default 2h is slower still. Queries see the same data either way.
BACKFILL_BLOCK_DURATION = "168h"


def backfill(
    openmetrics_file: str | Path,
    data_dir: str | Path,
    promtool: str = "promtool",
    max_block_duration: str = BACKFILL_BLOCK_DURATION,
) -> None:
    """Create TSDB blocks in `data_dir` from an OpenMetrics file (long blocks: fast)."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", f"--max-block-duration={max_block_duration}",
         str(openmetrics_file), str(data_dir)],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"promtool backfill of {openmetrics_file} failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:] or done.stdout[-2000:]}"
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LIVE: dict[int, subprocess.Popen] = {}


def _stop_leftovers() -> None:  # last resort if a test run is interrupted before teardown
    for proc in list(_LIVE.values()):
        if proc.poll() is None:
            proc.kill()


atexit.register(_stop_leftovers)


@dataclass
class PrometheusServer:
    """A Prometheus process started by `start_prometheus`; `stop()` ends it by its own PID."""

    url: str
    port: int
    pid: int
    data_dir: Path
    log_path: Path
    _proc: subprocess.Popen = field(repr=False)

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM this server's PID, SIGKILL after `timeout_s`; idempotent."""
        if self._proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._proc.wait(timeout=timeout_s)
        _LIVE.pop(self.pid, None)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> "PrometheusServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    """Poll /-/ready until 200 (True), the process exits or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.05)
    return False


def start_prometheus(
    data_dir: str | Path,
    workdir: str | Path,
    prometheus: str = "prometheus",
    ready_timeout_s: float = 30.0,
    extra_args: Sequence[str] = (),
) -> PrometheusServer:
    """Start `prometheus` on a free 127.0.0.1 port over `data_dir`; return once /-/ready is 200.

    Config, log and storage paths are all explicit (under `workdir` / `data_dir`); retention is
    3650 d so backfilled history survives start-up. Retries with another port if the chosen one
    was taken in between; raises RuntimeError with the log tail when it does not come up.
    """
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    config = work / "prometheus.yml"
    config.write_text("global: {}\n")
    last_log = ""
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = work / f"prometheus-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [prometheus,
                 f"--config.file={config}",
                 f"--storage.tsdb.path={data_dir}",
                 "--storage.tsdb.retention.time=3650d",
                 f"--web.listen-address=127.0.0.1:{port}",
                 *extra_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        _LIVE[proc.pid] = proc
        server = PrometheusServer(url, port, proc.pid, Path(data_dir), log_path, proc)
        if _wait_ready(url, proc, ready_timeout_s):
            return server
        last_log = server.log_tail()
        server.stop()
        if "address already in use" not in last_log:
            break
    raise RuntimeError(f"prometheus did not become ready on 127.0.0.1 (log tail):\n{last_log}")


ServerFactory = Callable[..., PrometheusServer]


@pytest.fixture(scope="module")
def prometheus_factory(tmp_path_factory) -> Iterator[ServerFactory]:
    """`factory(series=(), name="prom") -> PrometheusServer`: backfill `series` (MetricSeries)
    into a fresh TSDB and start a real Prometheus on it. Every server started is stopped at the
    end of the module (also on failure); `server.stop()` may end one earlier.

    Skips when prometheus/promtool are missing; fails instead under CI=true.
    """
    from conftest import require_binary  # tests/conftest.py (on sys.path under pytest)

    prometheus = require_binary("prometheus", PROMETHEUS_HINT)
    promtool = require_binary("promtool", PROMETHEUS_HINT)
    started: list[PrometheusServer] = []

    def factory(series: Iterable[MetricSeries] = (), name: str = "prom") -> PrometheusServer:
        work = tmp_path_factory.mktemp(name)
        data_dir = work / "data"
        data_dir.mkdir()
        series = list(series)
        if series:
            backfill(write_openmetrics(work / "history.om.txt", series), data_dir, promtool)
        server = start_prometheus(data_dir, work, prometheus)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


# ------------------------------------------------------------------------------------------
# A stub of the Prometheus HTTP API, for what a real server cannot show: the headers a client
# sends, slow answers, non-Prometheus answers, TLS set-ups.

EMPTY_MATRIX = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'


@dataclass(frozen=True)
class SeenRequest:
    """One request the stub received: method, path with query string, headers (as sent)."""

    method: str
    path: str
    headers: Mapping[str, str]


@dataclass
class StubAnswer:
    """What the stub replies: HTTP status, body bytes, content type, delay before answering."""

    status: int = 200
    body: bytes = EMPTY_MATRIX
    content_type: str = "application/json"
    delay_s: float = 0.0


@contextmanager
def stub_prometheus_api(
    answer: StubAnswer | None = None, ssl_context: ssl.SSLContext | None = None
) -> Iterator[tuple[str, list[SeenRequest]]]:
    """Serve `answer` to every request on a free 127.0.0.1 port, in a thread.

    Yields (base URL, list of SeenRequest filled as requests arrive). With `ssl_context` the
    URL is https. The server is shut down on exit (also on test failure).
    """
    reply = answer or StubAnswer()
    seen: list[SeenRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(SeenRequest(self.command, self.path, dict(self.headers.items())))
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    with serve_in_thread(Handler, ssl_context) as url:
        yield url, seen


@contextmanager
def serve_in_thread(handler: type[BaseHTTPRequestHandler],
                    ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `handler` on a free 127.0.0.1 port in a thread (https with `ssl_context`); yields
    the base URL and shuts the server down on exit (also on test failure)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="stub-http", daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def self_signed_certificate(workdir: str | Path, openssl: str = "openssl") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (SAN IP) made with the openssl CLI: (cert, key)."""
    work = Path(workdir)
    cert, key = work / "cert.pem", work / "key.pem"
    done = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl could not make a test certificate:\n{done.stderr[-2000:]}")
    return cert, key
