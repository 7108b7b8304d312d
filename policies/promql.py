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
        promql_parser.parse(expr)
    except ValueError as exc:
        reason = str(exc).strip() or "invalid PromQL"
        unknown = _UNKNOWN_FUNCTION.search(reason)
        if unknown:
            return Problem("warning", f"function {unknown.group(1)!r} is unknown to Ebbtide's PromQL parser "
                                      "(promql-parser): check that your Prometheus has it")
        return Problem("error", f"not valid PromQL ({reason}): {_shown(expr)}")
    return None


def _shown(expr: str, limit: int = 120) -> str:
    """The expression as quoted in a message, cut at `limit` characters."""
    one_line = " ".join(expr.split())
    return repr(one_line if len(one_line) <= limit else one_line[:limit] + "...")
