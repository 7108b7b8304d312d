"""policies.promql.check: a policy's PromQL parsed offline.

Cases: valid queries of every kind a policy holds (aggregations, histogram_quantile, ratios,
label matchers, subqueries, offsets) give no problem; syntax and type errors are errors quoting
the parser's reason and the query; a function the parser does not know is a warning naming it;
a long query is quoted cut to 120 characters with "...", on one line.
"""

from __future__ import annotations

import pytest

from policies.promql import check


@pytest.mark.parametrize("query", [
    "sum(rate(http_requests_total[5m]))",
    'histogram_quantile(0.99, sum by (le) (rate(player_startup_seconds_bucket{app="live"}[5m])))',
    "sum(rate(a_total[5m])) / sum(rate(b_total[5m]))",
    "max_over_time(sum(live_viewers)[1h:1m] offset 1d)",
    'sum(live_viewers{tier=~"core|silent"}) or vector(0)',
    "double_exponential_smoothing(sum(rate(x[5m]))[1h:1m], 0.3, 0.3)",
])
def test_valid_queries_pass(query):
    assert check(query) is None


@pytest.mark.parametrize("query, reason", [
    ("sum(rate(x[5m])", "unclosed left parenthesis"),
    ("rate(x)", "expected type matrix in call to function 'rate', got vector"),
    ("rate(x[5x])", "bad number or duration syntax: 5x"),
    ('sum(x{a="b")', "unexpected character inside braces: ')'"),
    ("sum(x, y)", "wrong number of arguments for aggregate expression provided, expected 1, got 2"),
])
def test_errors_quote_the_reason_and_the_query(query, reason):
    p = check(query)
    assert p is not None and p.severity == "error"
    assert p.message == f"not valid PromQL ({reason}): {query!r}"


@pytest.mark.parametrize("query", ["x[5m]", "(x[5m])", "sum(rate(x[5m]))[10m:1m]"])
def test_a_range_vector_is_an_error(query):
    # it parses, and every tick then failed at the server ("invalid expression type range vector")
    p = check(query)
    assert p is not None and p.severity == "error"
    assert p.message.startswith("gives a range vector, and a policy's query must give one value now")
    assert p.message.endswith(repr(query))


def test_an_unknown_function_is_a_warning():
    p = check("holt_winters(x[1h], 0.3, 0.3)")
    assert p is not None and p.severity == "warning" and "'holt_winters'" in p.message


def test_a_long_query_is_cut_on_one_line():
    query = "sum(\n  rate(" + "a" * 200 + "[5m]"
    p = check(query)
    assert p.severity == "error"
    quoted = p.message.split("): ", 1)[1]
    assert quoted == repr(("sum( rate(" + "a" * 200)[:120] + "...")


def test_every_query_of_the_reference_policy_is_checked_for_warnings():
    """The warnings pass finds PromQL fields by their type: each query of the reference policy
    (demand, quality SLIs, tier viewers, weak-network loss), given a function the parser does not
    know, is warned about at its own line and path, and nothing else is."""
    import re
    from pathlib import Path

    from policies.loading import read_policy

    text = (Path(__file__).parents[1] / "policies/examples/reference.yaml").read_text()
    pattern = re.compile(r"^(\s*(?:- )?(?:query|viewers_query|loss_query): ).*$", re.M)
    changed = pattern.sub(lambda m: m.group(1) + "'holt_winters(x[1h], 0.3, 0.3)'", text)
    lines = [i + 1 for i, line in enumerate(changed.splitlines()) if "holt_winters" in line]
    assert len(lines) == 14
    loaded = read_policy("reference.yaml", changed)
    warned = [w for w in loaded.warnings if "'holt_winters' is unknown" in w]
    assert [int(w.split(":")[1].split()[0]) for w in warned] == lines
    paths = {w.split(" ")[1].rstrip(":") for w in warned}
    assert {"workloads[0].demand.query", "workloads[1].quality[1].query", "bitrate.tiers[2].viewers_query",
            "bitrate.weak_network.loss_query"} <= paths


@pytest.mark.parametrize("query, selectors", [
    ("x", ("x",)),
    ('sum(rate(http_requests_total{job="a"}[5m])) / sum(rate(x[5m]))', ('http_requests_total{job="a"}', "x")),
    ("max(x) + max(x)", ("x",)),
    ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[5m])))", ("b_bucket",)),
    ("max_over_time(sum(live_viewers)[1h:1m])", ("live_viewers",)),
    ('label_replace(x, "a", "b", "c", "d")', ("x",)),
    ("vector(1)", ()),
    ("rate(x[5m] offset 1m)", None),  # an offset selector's age is not its freshness
    ("sum(rate(x[5m])", None),  # not PromQL
])
def test_source_selectors(query, selectors):
    from policies.promql import is_selector, source_selectors

    assert source_selectors(query) == selectors
    assert is_selector(query) == (query == "x")
