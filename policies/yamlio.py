"""YAML with line numbers, and pydantic errors told as `file:line path: message`.

`load_yaml_with_lines` returns the plain data and a map from each path (a tuple of keys and
list indexes) to the 1-based line where that value starts, so every validation error can name
its line. `format_validation_errors` turns a pydantic ValidationError into those lines, all of
them at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies.errors import InputFileError

PathKey = tuple[str | int, ...]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent override in a policy is a bug magnet)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None,
                f"duplicate key {key!r} (first at line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
# Keep ISO times as strings: pydantic parses them and refuses missing zones, YAML's own
# timestamp resolver would silently make naive datetimes.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line_map(node: yaml.Node | None, path: PathKey, out: dict[PathKey, int]) -> None:
    if node is None:
        return
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)


MAX_YAML_VALUES = 500_000
"""Most values (mapping keys and values, list items, scalars) a YAML document may expand to,
its aliases (`*name`) expanded: a thousand workloads written out in full hold about 100,000 (the
reference policy's hold 50-98 values each). A few hundred bytes of nested aliases (a "billion
laughs" file) expand to billions, which would take all the memory of the machine before any
error could be told."""

MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists a YAML document may have (a policy has under 10); an
alias that contains itself (`a: &x [*x]`) nests without end and is refused by the same rule."""


def _check_shape(node: yaml.Node | None, p: Path) -> None:
    """Refuse a document nested deeper than MAX_YAML_DEPTH or expanding (aliases followed) to
    more than MAX_YAML_VALUES values, naming the line where that starts."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if depth > MAX_YAML_DEPTH:
            raise InputFileError([f"{p}:{n.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels (or an "
                                  f"alias that contains itself): not a policy or events file"])
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v, depth + 1) for v in n.value)
        else:
            total = 1
        if total > MAX_YAML_VALUES:
            raise InputFileError([f"{p}:{n.start_mark.line + 1}: expands to more than {MAX_YAML_VALUES:,} values "
                                  f"with its aliases (*name) followed: refused (nested aliases that multiply, "
                                  f"a \"billion laughs\" file?)"])
        sizes[id(n)] = total
        return total

    if node is not None:
        size(node, 0)


def load_yaml_with_lines(path: str | Path, text: str | None = None) -> tuple[Any, dict[PathKey, int]]:
    """Read a YAML file; return (data, {path: line}). Syntax errors name file and line; a
    document too deep or too large once its aliases are expanded (`_check_shape`) is refused
    before it is built."""
    p = Path(path)
    if text is None:
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputFileError([f"{p}: file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError([f"{p}: cannot read: {exc}"]) from None
    try:
        loader = _UniqueKeyLoader(text)  # a SafeLoader subclass: parsed once, built from the checked nodes
        try:
            node = loader.get_single_node()
            _check_shape(node, p)
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise InputFileError([f"{p}: nested too deeply to read (more than {MAX_YAML_DEPTH} levels are "
                              f"refused)"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = str(exc.problem or exc)
        if "block" in problem or "mapping values are not allowed" in problem:
            problem += " (check the indentation of this line against the lines above it)"
        elif isinstance(exc, yaml.composer.ComposerError) and "another document" in problem:
            problem = ("a second YAML document starts here (`---`): a policy or events file holds one "
                       "document; merge the two or split them into two files")
        raise InputFileError([f"{p}{line}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise InputFileError([f"{p}: invalid YAML: {exc}"]) from None
    lines: dict[PathKey, int] = {}
    _line_map(node, (), lines)
    return data, lines


def format_path(loc: PathKey) -> str:
    """(`workloads`, 0, `scaling`, `max_replicas`) -> `workloads[0].scaling.max_replicas`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def line_for(lines: dict[PathKey, int], loc: PathKey) -> int | None:
    """The line of the deepest known prefix of `loc` (a missing field points at its parent)."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def format_validation_errors(
    exc: ValidationError, file: str | Path, lines: dict[PathKey, int], prefix: PathKey = ()
) -> list[str]:
    """One `file:line path: message` per pydantic error, in document order."""
    problems: list[tuple[int, str]] = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not _is_union_tag(p))
        line = line_for(lines, loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not in the schema; check spelling and indentation)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        where = f"{file}:{line}" if line else f"{file}"
        problems.append((line or 0, f"{where} {format_path(loc)}: {msg}"))
    problems.sort(key=lambda t: t[0])
    return [p for _, p in problems]


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the member type name to locations inside unions ("function-after[...]").
    return (isinstance(part, str) and "[" in part and "]" in part and part[0].isalpha() and "(" not in part
            and part.split("[")[0] in _UNION_TAGS)


_UNION_TAGS = {"function-after", "function-before", "function-wrap", "function-plain", "tagged-union", "union"}
