"""PromQL in a policy, checked offline when the policy loads (`ebbtide policy validate`, the
controller's start, every reload), so a typo is reported with its file, line and field before
any query reaches Prometheus, instead of failing every tick at run time.

The parser is promql-parser (Python bindings of GreptimeTeam's Rust PromQL parser, which follows
Prometheus's grammar and type checks: an unclosed parenthesis, a bad duration, `rate()` of an
instant vector, a wrong aggregation argument are errors). A function it does not know is only a
warning: the Prometheus server may be older (`holt_winters`, renamed in Prometheus 3) or newer
than the parser, and the server is the judge. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

import promql_parser

_UNKNOWN_FUNCTION = re.compile(r"unknown function with name '([^']*)'")


@dataclass(frozen=True)
class Problem:
    """What the parser said of one expression: an `error` refuses the policy, a `warning`
    (a function the parser does not know) is reported and the policy loads."""

    severity: Literal["error", "warning"]
    message: str


@functools.lru_cache(maxsize=1024)
def check(expr: str) -> Problem | None:
    """None when `expr` parses as PromQL, else the Problem with the parser's reason. Cached:
    validation and the warnings pass ask about the same queries, and a reload about them again."""
    try:
        root = promql_parser.parse(expr)
    except ValueError as exc:
        reason = str(exc).strip() or "invalid PromQL"
        unknown = _UNKNOWN_FUNCTION.search(reason)
        if unknown:
            return Problem("warning", f"function {unknown.group(1)!r} is unknown to Ebbtide's PromQL parser "
                                      "(promql-parser): check that your Prometheus has it")
        return Problem("error", f"not valid PromQL ({reason}): {_shown(expr)}")
    while isinstance(root, promql_parser.ParenExpr):
        root = root.expr
    if isinstance(root, (promql_parser.MatrixSelector, promql_parser.SubqueryExpr)):
        return Problem("error", f"gives a range vector, and a policy's query must give one value now (an "
                                f"instant vector or a scalar): wrap it, e.g. in rate(...) or max_over_time(...): "
                                f"{_shown(expr)}")
    return None


def _shown(expr: str, limit: int = 120) -> str:
    """The expression as quoted in a message, cut at `limit` characters."""
    one_line = " ".join(expr.split())
    return repr(one_line if len(one_line) <= limit else one_line[:limit] + "...")


_CHILDREN = ("lhs", "rhs", "expr", "args", "vector_selector", "param")


@functools.lru_cache(maxsize=1024)
def source_selectors(expr: str) -> tuple[str, ...] | None:
    """The vector selectors `expr` reads, as PromQL text (`x{job="a"}` of `sum(rate(x{job="a"}[5m]))`),
    in order, each once: what the freshness of its answer rests on. An aggregation or a function
    answers at the evaluation time whatever the age of its inputs (`timestamp(sum(x))` is "now"),
    so a sample's age is read from its selectors (`timestamp(x)`). None when `expr` does not
    parse, or a selector carries `offset` or `@` (its age is not its freshness): the caller then
    falls back on `timestamp(expr)`. Pure."""
    try:
        root = promql_parser.parse(expr)
    except ValueError:
        return None
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, promql_parser.VectorSelector):
            if node.offset or node.at is not None:
                return None
            text = node.prettify()
            if text not in found:
                found.append(text)
            continue
        children: list = []
        for name in _CHILDREN:
            child = getattr(node, name, None)
            if isinstance(child, (list, tuple)):
                children.extend(child)
            elif child is not None and not isinstance(child, (str, int, float, bool)):
                children.append(child)
        stack.extend(reversed(children))  # left to right, as written
    return tuple(found)


@functools.lru_cache(maxsize=1024)
def is_selector(expr: str) -> bool:
    """Is `expr` a bare instant-vector selector (`x`, `x{job="a"}`), whose `timestamp()` is its
    samples' own time? Pure."""
    try:
        return isinstance(promql_parser.parse(expr), promql_parser.VectorSelector)
    except ValueError:
        return False
