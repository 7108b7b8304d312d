"""Where the controller keeps its planner memory between processes (docs/controller.md, "Planner
memory across restarts").

A `MemoryStore` holds one text per workload (the versioned JSON of scaler.memories) and knows
nothing of its content: the controller encodes, decodes, validates and decides what to trust.

- `ConfigMapMemoryStore`: the data keys of one ConfigMap (a key per workload), read and written
  through scaler.kube.KubeCluster (its retries and error messages); created when absent. What
  `ebbtide run --state-configmap NAME` uses, and the chart's `persistState`.
- `InMemoryMemoryStore`: a dict, for tests (counts its loads and writes, can be made to fail).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from policies.errors import EbbtideError


class MemoryStore(Protocol):
    """Saved planner memories: workload name -> text."""

    @property
    def where(self) -> str:
        """What the store is, for people (`ConfigMap ebbtide-system/ebbtide-state`)."""
        ...

    def load(self) -> dict[str, str] | None:
        """Every saved text by workload name; None when the store itself does not exist (the
        ConfigMap is missing: first start, or deleted). Raises EbbtideError when the store
        cannot be read."""
        ...

    def save(self, changes: Mapping[str, str | None]) -> None:
        """Set (str) or remove (None) the texts of the named workloads, all in one write; the
        others stay as they are. Raises EbbtideError when the write fails."""
        ...


class InMemoryMemoryStore:
    """A MemoryStore in a dict. `writes` counts save calls; `fail_saves`/`fail_loads` make the
    next calls raise as a store that cannot be reached does."""

    def __init__(self, texts: Mapping[str, str] | None = None, where: str = "in-memory store"):
        self.texts: dict[str, str] = dict(texts or {})
        self._where = where
        self.writes = 0
        self.loads = 0
        self.fail_saves = False
        self.fail_loads = False

    @property
    def where(self) -> str:
        return self._where

    def load(self) -> dict[str, str] | None:
        if self.fail_loads:
            raise EbbtideError(f"{self._where}: cannot be read (fail_loads)")
        self.loads += 1
        return dict(self.texts)

    def save(self, changes: Mapping[str, str | None]) -> None:
        if self.fail_saves:
            raise EbbtideError(f"{self._where}: cannot be written (fail_saves)")
        self.writes += 1
        for name, text in changes.items():
            if text is None:
                self.texts.pop(name, None)
            else:
                self.texts[name] = text


#: Bytes of data (keys and values) a ConfigMap may hold: Kubernetes refuses one over 1 MiB in all;
#: the rest is left to its metadata.
CONFIGMAP_DATA_LIMIT = 1_000_000


class ConfigMapMemoryStore:
    """A MemoryStore in ConfigMap `namespace/name`: one data key per workload (workload names are
    DNS names, so valid keys). A missing ConfigMap reads as empty and is created by the first
    save; each save is one merge patch of the changed keys (a removed key is patched to null).
    `cluster`: a scaler.kube.KubeCluster (its API client, retries and KubeError messages)."""

    def __init__(self, cluster, namespace: str, name: str):
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self._exists: bool | None = None  # as last seen: a missing ConfigMap is created at once
        self._sizes: dict[str, int] = {}  # bytes of each key and its text, as last loaded or saved

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    def load(self) -> dict[str, str] | None:
        data = self.cluster.read_config_map_data(self.namespace, self.name)
        self._exists = data is not None
        self._sizes = {k: _size(k, v) for k, v in (data or {}).items()}
        return data

    def save(self, changes: Mapping[str, str | None]) -> None:
        """One merge patch of `changes`; refused before it is sent (EbbtideError) when the
        ConfigMap would hold more than CONFIGMAP_DATA_LIMIT bytes of data, which the API server
        would refuse with a less telling answer."""
        if not changes:
            return
        sizes = dict(self._sizes)
        for k, v in changes.items():
            if v is None:
                sizes.pop(k, None)
            else:
                sizes[k] = _size(k, v)
        total = sum(sizes.values())
        if total > CONFIGMAP_DATA_LIMIT:
            raise EbbtideError(
                f"{self.where} would hold {total:,} bytes of planner memory for {len(sizes)} workloads, over the "
                f"{CONFIGMAP_DATA_LIMIT:,} a ConfigMap can take (about {total // max(1, len(sizes)):,} bytes a "
                "workload): run fewer workloads per controller, or a shorter scaling.stabilization window")
        self._exists = self.cluster.write_config_map_data(self.namespace, self.name, changes, exists=self._exists)
        self._sizes = sizes


def _size(key: str, text: str) -> int:
    return len(key.encode()) + len(text.encode())
