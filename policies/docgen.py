"""Generate the policy field reference (Markdown) from the schema: one table per model with
each field's name, type, default and description, in the order the YAML nests them.

    python -m policies.docgen                      # print the reference
    python -m policies.docgen --write docs/policy.md   # replace the generated part in place
    python -m policies.docgen --check docs/policy.md   # exit 1 when the file is stale

In docs/policy.md the reference sits between BEGIN/END markers; the text around it is
written by hand and kept as is.
"""

from __future__ import annotations

import argparse
import sys
import types
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from policies import schema
from policies.units import format_duration

BEGIN = "<!-- BEGIN GENERATED FIELD REFERENCE: python -m policies.docgen --write docs/policy.md -->"
END = "<!-- END GENERATED FIELD REFERENCE -->"



def reference_markdown(root: type[BaseModel] = schema.Policy) -> str:
    """The field reference for `root` and every model under it, as Markdown."""
    sections: list[str] = []
    for model, path in _models(root):
        sections.append(_section(model, path))
    return "\n".join(sections).rstrip() + "\n"


def _models(root: type[BaseModel]) -> list[tuple[type[BaseModel], str]]:
    """Every model reachable from `root`, depth first, each with the YAML path where it appears."""
    out: list[tuple[type[BaseModel], str]] = []
    seen: set[type] = set()

    def visit(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        out.append((model, path))
        for name, field in model.model_fields.items():
            key = field.alias or name
            for sub, suffix in _nested(field.annotation):
                visit(sub, f"{path}.{key}{suffix}".lstrip("."))

    visit(root, "")
    return out


def _nested(tp: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    origin = get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(tp, suffix)]
    if origin is Annotated:
        return _nested(get_args(tp)[0], suffix)
    if origin in (list, tuple):
        return _nested(get_args(tp)[0], suffix + "[]")
    if origin is dict:
        return _nested(get_args(tp)[1], suffix + ".*")
    if origin in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _nested(arg, suffix)]
    return []


def _section(model: type[BaseModel], path: str) -> str:
    title = f"### {model.__name__}"
    where = f"At `{path}`." if path else "The top level of the file."
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    if doc and model.__doc__ != BaseModel.__doc__ and not doc.startswith("Base of every policy model"):
        where += f" {doc}"
    rows = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(
            f"| `{field.alias or name}` | {_cell(_type(field.annotation, field.metadata))} | "
            f"{_cell(_default(field))} | {_cell(field.description or '')} |"
        )
    return "\n".join([title, "", where, "", *rows, ""])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- types
def _type(tp: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        return _type(base, [*meta, *metadata])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = " or ".join(_type(a) for a in args)
        text = inner + (" or null" if len(args) < len(get_args(tp)) else "")
        return _with_constraints(text, metadata)
    if origin is Literal:
        return " | ".join(f"`{v}`" for v in get_args(tp))
    if origin is list:
        return f"list of {_type(get_args(tp)[0])}" + _constraints(metadata, items=True)
    if origin is dict:
        k, v = get_args(tp)
        return f"map {_type(k)} → {_type(v)}" + _constraints(metadata, items=True)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return _with_constraints(_scalar(tp, metadata), metadata)


def _scalar(tp: Any, metadata: list[Any] | tuple[Any, ...]) -> str:
    if tp is timedelta:
        return "duration"
    if tp is datetime:
        return "time (ISO 8601 with zone)"
    if tp is str and schema.is_promql(tp, metadata):
        return "PromQL"
    if tp is str and any(getattr(m, "pattern", None) == schema.NAME_PATTERN for m in metadata):
        return "name (lowercase DNS name)"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(tp, getattr(tp, "__name__", str(tp)))


def _with_constraints(text: str, metadata: list[Any] | tuple[Any, ...]) -> str:
    if text.startswith("name (") or text == "PromQL":
        return text
    return text + _constraints(metadata)


def _constraints(metadata: list[Any] | tuple[Any, ...], items: bool = False) -> str:
    parts: list[str] = []
    for m in metadata:
        if isinstance(m, at.Gt):
            parts.append(f"> {m.gt:g}")
        elif isinstance(m, at.Ge):
            parts.append(f"≥ {m.ge:g}")
        elif isinstance(m, at.Lt):
            parts.append(f"< {m.lt:g}")
        elif isinstance(m, at.Le):
            parts.append(f"≤ {m.le:g}")
        elif isinstance(m, at.MinLen) and m.min_length > (0 if items else 1):
            parts.append(f"at least {m.min_length}" + (" item" if items else " characters"))
        elif isinstance(m, AfterValidator) and m.func is schema._positive:
            parts.append("> 0")
        elif getattr(m, "pattern", None):
            parts.append(f"matching `^{m.pattern}$`" if isinstance(m, schema.Matching) else f"matching `{m.pattern}`")
    return f" ({', '.join(parts)})" if parts else ""


# --------------------------------------------------------------------------- defaults
def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    return _value(value)


def _value(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "all defaults"
    if value is None:
        return "absent"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


# --------------------------------------------------------------------------- files
def render_into(document: str, reference: str | None = None) -> str:
    """`document` with the text between the BEGIN and END markers replaced by the reference."""
    if BEGIN not in document or END not in document:
        raise ValueError(f"markers not found; the document must contain\n{BEGIN}\n{END}")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{reference or reference_markdown()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.docgen", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="replace the generated part of FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 when FILE's generated part is stale")
    args = parser.parse_args(argv)
    if args.write is None and args.check is None:
        sys.stdout.write(reference_markdown())
        return 0
    path = Path(args.write or args.check)
    try:
        fresh = render_into(current := path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # no such file, or no markers: say which, no traceback
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if fresh != current:
            print(f"{path} is stale: run python -m policies.docgen --write {path}", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
