"""Generates the chart's derived files from their sources, helm-docs style; `--check` verifies them.

1. README.md values table (between `<!-- values:start -->` and `<!-- values:end -->`) from the
   `# --` comments of values.yaml: a comment block starting `# --` right above a key documents that
   key; `# -- (object)` / `# -- (list)` declares the type and documents a free-form value as a
   whole (its children need no comments). Every other leaf must carry its own comment.
2. values.schema.json `$defs`: the policy schema (policies.loading.policy_json_schema, so
   `helm install` refuses a bad policy) and the Kubernetes core/v1 types the values pass through
   (Affinity, Volume, ...), copied from kubernetes-validate's strict schemas for KUBE_VERSION
   with descriptions dropped. Everything else in values.schema.json is written by hand.

Run with the project's venv (imports the policy schema and kubernetes_validate):

    .venv/bin/python charts/ebbtide/docgen.py          # rewrite README.md and values.schema.json
    .venv/bin/python charts/ebbtide/docgen.py --check  # exit 1 when either is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent
REPO = CHART.parent.parent
START, END = "<!-- values:start -->", "<!-- values:end -->"
#: Kubernetes version whose strict core/v1 schemas validate pass-through values (newest one tested).
KUBE_VERSION = "1.33.0"
#: Kubernetes types referenced from values.schema.json as `#/$defs/io.k8s.api.core.v1.<Type>`.
KUBE_TYPES = ("Affinity", "EnvVar", "LocalObjectReference", "PodSecurityContext", "ResourceRequirements",
              "SecurityContext", "Toleration", "TopologySpreadConstraint", "Volume", "VolumeMount")
#: Longest default shown inline in the table; longer ones point at values.yaml.
MAX_DEFAULT_CHARS = 60

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
_DOC = re.compile(r"^ *# -- ?(?:\((?P<type>[a-z]+)\) ?)?(?P<text>.*)$")
_CONT = re.compile(r"^ *#(?: (?P<text>.*))?$")


@dataclass(frozen=True)
class Row:
    """One documented value: dotted key, type, default (as in values.yaml), description."""

    key: str
    type: str
    default: Any
    description: str


class DocError(Exception):
    """values.yaml is not documented as this generator requires (message names the key/line)."""


def _lookup(values: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        values = values[part]
    return values


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string"


def parse_values(text: str) -> list[Row]:
    """Rows for every `# --`-documented key of a values.yaml, in file order.

    Raises DocError when a leaf value has no comment of its own or of a documented
    `(object)`/`(list)` ancestor.
    """
    values = yaml.safe_load(text) or {}
    docs: dict[tuple[str, ...], tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []
    pending: tuple[str | None, list[str]] | None = None
    for line in text.splitlines():
        if not line.strip():
            pending = None
            continue
        doc = _DOC.match(line)
        if doc:
            pending = (doc["type"], [doc["text"].strip()])
            continue
        cont = _CONT.match(line)
        if cont:
            if pending is not None:
                pending[1].append((cont["text"] or "").strip())
            continue
        key = _KEY.match(line)
        if not key:  # list items and flow/continuation lines: never documented keys
            pending = None
            continue
        indent = len(key["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(k for _, k in stack) + (key["key"],)
        if pending is not None:
            docs[path] = (pending[0], " ".join(t for t in pending[1] if t))
            pending = None
        rest = key["rest"].split("#", 1)[0].strip()
        if not rest:
            stack.append((indent, key["key"]))

    missing: list[str] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if path in docs:
            declared = docs[path][0]
            if declared in ("object", "list") or not isinstance(node, dict) or not node:
                return
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, path + (str(k),))
        elif path not in docs:
            missing.append(".".join(path))

    walk(values, ())
    if missing:
        raise DocError("values.yaml: undocumented values (add a `# --` comment above each): "
                       + ", ".join(missing))
    rows = []
    for path, (declared, text_) in docs.items():
        try:
            default = _lookup(values, path)
        except (KeyError, TypeError):
            raise DocError(f"values.yaml: documented key {'.'.join(path)} not found in the parsed values") from None
        if isinstance(default, dict) and default and declared not in ("object", "list"):
            continue  # a section heading comment; its children carry the rows
        rows.append(Row(".".join(path), declared or _type_of(default), default, text_))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default_cell(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if value == "":
        shown = '""'
    if len(shown) > MAX_DEFAULT_CHARS:
        return "see `values.yaml`"
    return f"`{_cell(shown)}`"


def values_table(rows: list[Row]) -> str:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{r.key}` | {r.type} | {_default_cell(r.default)} | {_cell(r.description)} |" for r in rows]
    return "\n".join(lines)


def render_readme(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise DocError(f"README.md: markers {START} / {END} not found")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def kube_defs(version: str = KUBE_VERSION, types: tuple[str, ...] = KUBE_TYPES) -> dict[str, Any]:
    """Strict JSON Schemas (no descriptions) of core/v1 `types` and everything they reference."""
    import kubernetes_validate.utils as kv

    all_defs = kv.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json",
                                  version)["$defs"]
    out: dict[str, Any] = {}
    todo = [f"io.k8s.api.core.v1.{t}" for t in types]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = _strip_descriptions(all_defs[name])
        todo += re.findall(r'"#/\$defs/([^"]+)"', json.dumps(all_defs[name]))
    return dict(sorted(out.items()))


def policy_defs() -> dict[str, Any]:
    """The policy file's JSON Schema as `$defs` (root as `Policy`; its refs stay `#/$defs/X`)."""
    sys.path.insert(0, str(REPO))
    from policies.loading import policy_json_schema

    schema = policy_json_schema()
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    if "Policy" in defs:
        raise DocError("policy schema already defines $defs/Policy")
    return {"Policy": schema, **defs}


def render_schema(schema_text: str) -> str:
    schema = json.loads(schema_text)
    schema["$defs"] = {**policy_defs(), **kube_defs()}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Each generated file and its expected content."""
    rows = parse_values((CHART / "values.yaml").read_text())
    readme = CHART / "README.md"
    schema = CHART / "values.schema.json"
    return {readme: render_readme(readme.read_text(), values_table(rows)),
            schema: render_schema(schema.read_text())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    args = ap.parse_args(argv)
    try:
        expected = outputs()
    except DocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [p for p, text in expected.items() if p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(REPO)} (run .venv/bin/python charts/ebbtide/docgen.py)", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(expected[p])
        print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
