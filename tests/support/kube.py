"""A Kubernetes API for tests: the kmock emulator on a free port, the official client pointed at
it, and a transport between them that records every request and injects failures.

    def test_x(kube_env):
        kube_env.server.seed(deployment("live", "web", replicas=3, ready=3))
        cluster = kube_env.cluster()                      # KubeCluster, fake sleep, fixed jitter
        kube_env.transport.fail("PATCH", r"/deployments/web/scale$", 429, times=2, retry_after=3)
        ...
        assert kube_env.server.get("Deployment", "live", "web")["spec"]["replicas"] == 5
        assert kube_env.transport.writes() == [...]       # what was sent, in order

Facts this relies on (kmock 0.8, measured; see /work/shared/docs/COMPONENTS.md):
- `KubernetesEmulator` keeps objects in memory and serves GET/LIST/POST/PATCH/DELETE; PATCH
  merges dicts (a merge patch), `/scale` patches the workload itself and returns it whole; PUT
  is not served; no resourceVersion, uid, defaulting or validation; label selectors ignored.
- LIST of a resource no object was ever stored under answers 404 unless the resource is
  declared (`emulator.resources[...]`): the fixture declares every resource the adapter uses.
- The emulator is asyncio (aiohttp): it runs on its own event loop in a daemon thread; the
  synchronous client talks to it over loopback HTTP. Seeding and reading the stored objects go
  through that loop (`run_coroutine_threadsafe`).
- Injected failures never reach the emulator (`after=False`: nothing is applied, as for a real
  409/429), or are answered after the emulator applied the request (`after=True`: a 5xx whose
  write did land, e.g. a timeout after commit).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import kmock
import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes.client import rest

#: kind -> kmock resource ("group/version/plural").
RESOURCES = {
    "Deployment": "apps/v1/deployments",
    "StatefulSet": "apps/v1/statefulsets",
    "HorizontalPodAutoscaler": "autoscaling/v2/horizontalpodautoscalers",
    "ConfigMap": "v1/configmaps",
    "Event": "v1/events",
    "Lease": "coordination.k8s.io/v1/leases",
}


class KmockServer:
    """kmock's KubernetesEmulator served on 127.0.0.1:<free port> from a background thread."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.emulator: kmock.KubernetesEmulator | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("kmock emulator did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"kmock emulator failed to start: {self._error!r}")

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with kmock.KubernetesEmulator() as emu, kmock.Server(emu) as srv:
                for res in RESOURCES.values():
                    emu.resources[res] = {}
                self.emulator, self.port = emu, srv.port
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def seed(self, *objs: dict[str, Any]) -> None:
        """Store objects as if created (no request is recorded)."""
        def put() -> None:
            assert self.emulator is not None
            for obj in objs:
                meta = obj["metadata"]
                self.emulator.objects[RESOURCES[obj["kind"]], meta.get("namespace"), meta["name"]] = copy.deepcopy(obj)
        self._on_loop(put)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (a deep copy), or None when absent/deleted."""
        def read() -> dict[str, Any] | None:
            assert self.emulator is not None
            try:
                obj = self.emulator.objects[RESOURCES[kind], namespace, name]
            except KeyError:
                return None
            return None if obj.deleted else json.loads(json.dumps(obj.raw))
        return self._on_loop(read)

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a kind (deep copies), optionally in one namespace."""
        def read() -> list[dict[str, Any]]:
            assert self.emulator is not None
            out = []
            for (res, ns, _), obj in self.emulator.objects.items():
                if res == kmock.resource(RESOURCES[kind]) and not obj.deleted and namespace in (None, ns):
                    out.append(json.loads(json.dumps(obj.raw)))
            return out
        return self._on_loop(read)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)


# --------------------------------------------------------------------------- transport
@dataclass
class Recorded:
    """One request as the client sent it and the answer it got (`injected`: from a Fault)."""

    method: str
    path: str
    query: str
    body: Any
    status: int
    response: Any
    injected: bool = False
    content_type: str | None = None


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    retry_after: int | None = None
    after: bool = False
    skip: int = 0


_REASONS = {409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout", 403: "Forbidden", 422: "Unprocessable Entity"}


class FaultInjectingTransport:
    """Stands in for the ApiClient's `rest_client`: records every request, and answers the
    ones matching a Fault with its status (a Kubernetes Status body, Retry-After if given)."""

    def __init__(self, inner: rest.RESTClientObject):
        self.inner = inner
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []

    def fail(self, method: str, path_regex: str, status: int, times: int = 1, retry_after: int | None = None,
             after: bool = False, skip: int = 0) -> None:
        """After letting `skip` matching requests through, the next `times` requests `method`
        whose path matches `path_regex` get `status` (Retry-After: `retry_after` seconds)."""
        self.faults.append(Fault(method.upper(), re.compile(path_regex), status, times, retry_after, after, skip))

    def request(self, method: str, url: str, headers: dict | None = None, body: Any = None,
                post_params: Any = None, _request_timeout: Any = None) -> rest.RESTResponse:
        parts = urlsplit(url)
        fault = next((f for f in self.faults if f.times > 0 and f.method == method.upper()
                      and f.path.search(parts.path)), None)
        if fault is not None and fault.skip > 0:
            fault.skip -= 1
            fault = None
        sent = json.loads(json.dumps(body)) if body is not None else None
        if fault is None or fault.after:
            resp = self.inner.request(method, url, headers=headers, body=body, post_params=post_params,
                                      _request_timeout=_request_timeout)
            data = resp.response.data  # urllib3 caches it: the client reads it again
            if fault is None:
                self.requests.append(Recorded(method.upper(), parts.path, parts.query, sent, resp.status,
                                              json.loads(data) if data else None,
                                              content_type=(headers or {}).get("Content-Type")))
                return resp
        assert fault is not None
        fault.times -= 1
        status_body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                       "code": fault.status, "reason": _REASONS.get(fault.status, "Failure"),
                       "message": f"injected {fault.status} by the test transport"}
        hdrs = {"Content-Type": "application/json"}
        if fault.retry_after is not None:
            hdrs["Retry-After"] = str(fault.retry_after)
        raw = urllib3.HTTPResponse(body=json.dumps(status_body).encode(), status=fault.status, headers=hdrs,
                                   reason=_REASONS.get(fault.status, "Failure"), preload_content=True)
        self.requests.append(Recorded(method.upper(), parts.path, parts.query, sent, fault.status, status_body,
                                      injected=True, content_type=(headers or {}).get("Content-Type")))
        return rest.RESTResponse(raw)

    def close(self) -> None:
        self.inner.close()

    # ---- views for assertions
    def writes(self) -> list[Recorded]:
        """Requests that change state (POST/PATCH/PUT/DELETE), injected failures included."""
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]

    def clear(self) -> None:
        self.requests.clear()


def validate_sent(transport: FaultInjectingTransport, kube_version: str = "1.30") -> int:
    """Validate every body sent, strictly, against the Kubernetes schemas: a created object
    as sent; a patch through the patched object the server returned. Returns how many."""
    from scaler.kube import validate_object

    n = 0
    for r in transport.writes():
        if r.method == "POST":
            validate_object(r.body, kube_version)
            n += 1
        elif r.method == "PATCH" and not r.injected:
            validate_object(r.response, kube_version)
            n += 1
    return n


# --------------------------------------------------------------------------- the fixture
@dataclass
class KubeEnv:
    server: KmockServer
    api_client: k8s.ApiClient
    transport: FaultInjectingTransport
    sleeps: list[float] = field(default_factory=list)

    def cluster(self, **kwargs: Any):
        """A KubeCluster on this API: sleeps recorded (not slept), jitter drawn from a seeded RNG."""
        from scaler.kube import KubeCluster

        rng = random.Random(7)
        kwargs.setdefault("sleep", self.sleeps.append)
        kwargs.setdefault("rand", rng.random)
        kwargs.setdefault("validate_bodies", True)
        return KubeCluster(self.api_client, **kwargs)


def make_api_client(url: str) -> tuple[k8s.ApiClient, FaultInjectingTransport]:
    cfg = k8s.Configuration(host=url)
    api = k8s.ApiClient(cfg)
    transport = FaultInjectingTransport(api.rest_client)
    api.rest_client = transport  # type: ignore[assignment]
    return api, transport


@pytest.fixture
def kube_env() -> Iterator[KubeEnv]:
    """A fresh emulator (empty) and a client with a recording, failure-injecting transport."""
    server = KmockServer()
    api, transport = make_api_client(server.url)
    try:
        yield KubeEnv(server, api, transport)
    finally:
        api.close()
        server.stop()


# --------------------------------------------------------------------------- object builders
def deployment(namespace: str, name: str, replicas: int, ready: int | None = None,
               kind: str = "Deployment") -> dict[str, Any]:
    """A schema-valid Deployment (or StatefulSet) with spec.replicas and status.readyReplicas."""
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}},
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    status: dict[str, Any] = {"replicas": replicas}
    if ready is not None:
        status["readyReplicas"] = ready
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": spec, "status": status}


def hpa(namespace: str, name: str, target_kind: str, target_name: str, min_replicas: int,
        max_replicas: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target_name},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}


def configmap(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": dict(data)}
