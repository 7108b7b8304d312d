"""Policy schema, loading, error reporting, JSON Schema export, docs and the `policy` CLI.

Cases:
- every golden valid fixture loads, with exactly its golden warnings;
- every golden invalid fixture produces exactly its golden errors (file:line path: message), all
  in one InputFileError; goldens and fixtures pair up one to one;
- the brief's example error (`policy.yaml:14 workloads[0].scaling.max_replicas: ...`), also when
  the schema is used without the loader (error location ends in `.max_replicas`);
- property: max_replicas < min_replicas is an error exactly when it should be;
- the minimal example is the documented file, and its defaults are the hand-written values and
  what docs/policy.md says;
- the reference policy validates without warnings and sets every field of the schema;
- the exported JSON Schema is valid draft 2020-12, accepts both examples, refuses unknown keys
  (every object has additionalProperties false) and writes duration defaults as `5m`;
- an unknown key injected into ANY mapping of the reference policy is reported at its line;
- times without a zone are refused; duplicate YAML keys are refused naming both lines;
- policy_digest: equal content -> equal digest whatever the formatting; any change -> new digest;
- docs/policy.md's generated field reference is up to date; `python -m policies.docgen` --check exits 1
  naming a stale file, --write makes it fresh, a file without the markers or absent exits 2;
- `ebbtide policy validate` (exit 0 + one summary line per file, exit 2 + every error of every
  file, --strict, missing file) and `ebbtide policy schema` via scaler.cli.main.
- bitrate.workload defaults to the first workload and must name one (error with its line);
- a zero-length event (start = peak = end) is a warning naming its line and name; so is a lift on
  an event whose declared ramp is longer than 6 h (not a shorter one, not an event without lift,
  not when every workload bounds its pre-scaling with scaling.event_lookahead).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import scaler.cli as cli
from policies import docgen
from policies.errors import InputFileError
from policies.loading import load_policy, load_policy_text, policy_digest, policy_json_schema, read_policy
from policies.schema import Policy, Scaling
from policies.yamlio import load_yaml_with_lines

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "policies"
EXAMPLES = REPO / "policies" / "examples"
MINIMAL = EXAMPLES / "minimal.yaml"
REFERENCE = EXAMPLES / "reference.yaml"

VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))

MINIMAL_TEXT = """\
apiVersion: ebbtide/v1
events:
  - {name: big-sale, kind: sale, start: 2026-11-10T16:00:00Z, peak: 2026-11-11T12:00:00Z, end: 2026-11-11T16:00:00Z}
workloads:
  - name: web
    target: {kind: Deployment, namespace: default, name: web}
    demand: {query: 'sum(rate(http_requests_total[5m]))', per_replica: 1000}
    pod_startup: 90s
    scaling: {min_replicas: 2, max_replicas: 500}
"""


def _golden(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _errors(text: str, name: str = "policy.yaml") -> list[str]:
    with pytest.raises(InputFileError) as info:
        load_policy_text(text, name)
    return info.value.problems


# --------------------------------------------------------------------------- golden fixtures
def test_there_are_golden_fixtures():
    assert len(VALID) >= 4 and len(INVALID) >= 10


@pytest.mark.parametrize("fixture", VALID, ids=lambda p: p.name)
def test_valid_fixture_loads_with_its_warnings(fixture: Path):
    loaded = read_policy(fixture.name, fixture.read_text(encoding="utf-8"))
    assert isinstance(loaded.policy, Policy)
    assert list(loaded.warnings) == _golden(fixture.with_suffix(".warnings.txt"))


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_reports_exactly_its_errors(fixture: Path):
    expected = _golden(fixture.with_suffix(".errors.txt"))
    assert expected, f"{fixture.name}: empty golden"
    problems = _errors(fixture.read_text(encoding="utf-8"), fixture.name)
    assert problems == expected
    for problem in problems:  # every problem names the file and a line
        assert re.match(rf"^{re.escape(fixture.name)}:\d+[ :]", problem), problem


def test_invalid_fixtures_report_many_problems_at_once():
    counts = {f.name: len(_golden(f.with_suffix(".errors.txt"))) for f in INVALID}
    assert sum(n >= 4 for n in counts.values()) >= 6, counts


def test_goldens_and_fixtures_pair_up():
    for folder, suffix in (("valid", ".warnings.txt"), ("invalid", ".errors.txt")):
        fixtures = {p.name.removesuffix(".yaml") for p in (FIXTURES / folder).glob("*.yaml")}
        goldens = {p.name.removesuffix(suffix) for p in (FIXTURES / folder).glob(f"*{suffix}")}
        assert fixtures == goldens, folder


def test_readme_explains_regeneration():
    text = (FIXTURES / "README.md").read_text(encoding="utf-8")
    assert "regenerate.py" in text and (FIXTURES / "regenerate.py").is_file()


# --------------------------------------------------------------------------- cross-field locations
def test_scaling_bound_error_names_max_replicas_line():
    text = MINIMAL_TEXT.replace("scaling: {min_replicas: 2, max_replicas: 500}",
                                "scaling:\n      min_replicas: 4\n      max_replicas: 3")
    assert _errors(text) == ["policy.yaml:11 workloads[0].scaling.max_replicas: must be >= min_replicas (4)"]


def test_schema_without_loader_locates_bound_error_at_max_replicas():
    data = yaml.safe_load(MINIMAL_TEXT.replace("min_replicas: 2, max_replicas: 500", "min_replicas: 9, max_replicas: 5"))
    data["events"] = []
    with pytest.raises(ValidationError) as info:
        Policy.model_validate(data)
    (err,) = info.value.errors()
    assert err["loc"] == ("workloads", 0, "scaling", "max_replicas")
    assert err["msg"] == "must be >= min_replicas (9)"


@settings(max_examples=60, deadline=None)
@given(lo=st.integers(min_value=0, max_value=1000), hi=st.integers(min_value=1, max_value=1000))
def test_scaling_bounds_property(lo: int, hi: int):
    if hi >= lo:
        s = Scaling(min_replicas=lo, max_replicas=hi)
        assert s.min_replicas <= s.max_replicas
    else:
        with pytest.raises(ValidationError) as info:
            Scaling(min_replicas=lo, max_replicas=hi)
        assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
            (("max_replicas",), f"must be >= min_replicas ({lo})")
        ]


def test_naive_times_refused():
    text = MINIMAL_TEXT.replace("start: 2026-11-10T16:00:00Z", "start: 2026-11-10T16:00:00")
    assert _errors(text) == [
        "policy.yaml:3 events[0].start: time has no zone: '2026-11-10T16:00:00' (add Z or +08:00)"
    ]


def test_zoned_times_normalised_to_utc():
    text = MINIMAL_TEXT.replace("peak: 2026-11-11T12:00:00Z", "peak: 2026-11-11T20:00:00+08:00")
    ev = load_policy_text(text).events[0]
    assert ev.peak == datetime(2026, 11, 11, 12, tzinfo=timezone.utc)


def test_duplicate_yaml_keys_name_both_lines():
    text = MINIMAL_TEXT.replace("    pod_startup: 90s\n", "    pod_startup: 90s\n    pod_startup: 2m\n")
    assert _errors(text) == ["policy.yaml:9: invalid YAML: duplicate key 'pod_startup' (first at line 8)"]


def test_aliases_that_multiply_are_refused_before_they_are_built():
    # 9 levels of 9 aliases: 9**9 (387 million) values from a few hundred bytes ("billion laughs")
    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        rows.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    assert _errors("\n".join(rows) + "\n") == [
        "policy.yaml:6: expands to more than 500,000 values with its aliases (*name) followed: refused (nested "
        'aliases that multiply, a "billion laughs" file?)']
    # an anchor, as engineers set one to share a block, is fine
    shared = MINIMAL_TEXT.replace("    scaling:", "    resources: &r {cpu_cores: 2, memory_gib: 4}\n    scaling:")
    assert load_policy_text(shared).workloads[0].resources.cpu_cores == 2


def test_self_containing_alias_and_deep_nesting_are_clear_errors():
    assert _errors("apiVersion: ebbtide/v1\nevents: &x [*x]\n") == [
        "policy.yaml:2: nested deeper than 64 levels (or an alias that contains itself): not a policy or events file"]
    deep = 100
    assert _errors("events: " + "[" * deep + "]" * deep + "\n") == [
        "policy.yaml:1: nested deeper than 64 levels (or an alias that contains itself): not a policy or events file"]
    very = 5000  # past PyYAML's own recursion
    assert _errors("events: " + "[" * very + "]" * very + "\n") == [
        "policy.yaml: nested too deeply to read (more than 64 levels are refused)"]


def _mapping_paths(data, path=()):
    """Every mapping in the data with its path (free-form maps such as `caps` excluded)."""
    if isinstance(data, dict):
        if path[-1:] != ("caps",):
            yield path, data
        for k, v in data.items():
            yield from _mapping_paths(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _mapping_paths(v, path + (i,))


def test_unknown_key_anywhere_is_reported_at_its_line():
    data, _ = load_yaml_with_lines(REFERENCE)
    # One mapping per schema position (workloads[0] stands for every workload): each model once.
    by_shape: dict[tuple, tuple] = {}
    for path, _ in _mapping_paths(data):
        by_shape.setdefault(tuple(0 if isinstance(p, int) else p for p in path), path)
    assert len(by_shape) == len(docgen._models(Policy)) - 1  # every model but BasicAuth (commented out)
    for path in by_shape.values():
        doc = copy.deepcopy(data)
        target = doc
        for part in path:
            target = target[part]
        target["zz_unknown"] = 1
        text = yaml.safe_dump(doc, sort_keys=False, width=1000)
        (line,) = [n for n, ln in enumerate(text.splitlines(), 1) if "zz_unknown:" in ln]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path + ("zz_unknown",)).lstrip(".")
        assert _errors(text, "x.yaml") == [
            f"x.yaml:{line} {where}: unknown field (not in the schema; check spelling and indentation)"
        ]


# --------------------------------------------------------------------------- examples and defaults
def test_minimal_example_is_the_documented_file():
    lines = [ln for ln in MINIMAL.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    assert "\n".join(lines) + "\n" == MINIMAL_TEXT
    assert MINIMAL_TEXT in (REPO / "docs" / "policy.md").read_text(encoding="utf-8").replace("```yaml\n", "")


def test_minimal_defaults_are_the_documented_values():
    p = load_policy(MINIMAL)
    assert p.dry_run is False and p.bitrate is None
    assert p.schedule.tick == timedelta(minutes=1)
    assert p.prometheus.url == "http://prometheus-operated.monitoring.svc:9090"
    assert p.prometheus.max_staleness == timedelta(minutes=5)
    w = p.workload("web")
    assert w.pod_startup == timedelta(seconds=90)
    assert (w.scaling.min_replicas, w.scaling.max_replicas) == (2, 500)
    assert (w.scaling.quantile, w.scaling.headroom, w.scaling.max_scale_down_fraction) == (0.9, 0.15, 0.1)
    assert w.scaling.scale_down_cooldown == timedelta(minutes=10)
    assert w.scaling.scale_up_cooldown == timedelta(0)
    f = w.forecast
    assert (f.lookback, f.step, f.horizon, f.refit_interval, f.min_history) == (
        timedelta(days=28), timedelta(minutes=5), timedelta(hours=24), timedelta(hours=6), timedelta(days=7))
    assert f.trust_bound == 0.35 and w.quality == [] and w.hpa is None
    assert (w.resources.cpu_cores, w.resources.memory_gib) == (1.0, 2.0)
    assert p.cost.currency == "USD" and p.cost.egress_billing == "per_gb"
    assert p.events[0].start == datetime(2026, 11, 10, 16, tzinfo=timezone.utc)


def _doc_defaults() -> dict[str, dict[str, str]]:
    """docs/policy.md tables: section (model name) -> field -> Default cell."""
    out: dict[str, dict[str, str]] = {}
    section = None
    for line in (REPO / "docs" / "policy.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
            out[section] = {}
        elif section and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            out[section][cells[0].strip("`")] = cells[2]
    return out


def test_docs_defaults_match_what_the_minimal_policy_loads():
    docs = _doc_defaults()
    p = load_policy(MINIMAL)
    w = p.workloads[0]
    checked = 0
    for model in (p.schedule, p.prometheus, w.resources, w.scaling, w.forecast, p.cost):
        for name in type(model).model_fields:
            if name in model.model_fields_set:
                continue
            cell = docs[type(model).__name__][name]
            assert cell == docgen._value(getattr(model, name)), f"{type(model).__name__}.{name}"
            checked += 1
    assert checked >= 30
    # Hand-checked spellings of a few, so the formatter itself is tested too.
    assert docs["ForecastSettings"]["lookback"] == "`28d`"
    assert docs["Scaling"]["quantile"] == "`0.9`"
    assert docs["Scaling"]["max_replicas"] == "**required**"
    assert docs["Policy"]["bitrate"] == "absent"


def test_reference_validates_without_warnings():
    loaded = read_policy(REFERENCE)
    p = loaded.policy
    assert loaded.warnings == ()
    assert [w.name for w in p.workloads] == ["ingest", "transcode", "edge", "api"]
    assert p.workload("api").hpa is not None
    assert {q.name for w in p.workloads for q in w.quality} >= {"rebuffering", "startup-time", "latency"}
    assert [r.name for r in p.bitrate.ladder] == ["1080p", "720p", "480p", "360p"]
    assert {t.name for t in p.bitrate.tiers} == {"core", "silent", "edge"}
    assert {e.kind for e in p.events} == {"sale", "joint_live"}
    assert sum(e.recurrence == "yearly" for e in p.events) == 2


def _schema_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        out.add(path)
        for sub, suffix in docgen._nested(field.annotation):
            out |= _schema_paths(sub, f"{path}{suffix}.")
    return out


def _data_paths(data, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(data, dict):
        for k, v in data.items():
            path = f"{prefix}{k}"
            out.add(path)
            if prefix.endswith("caps."):
                continue
            out |= _data_paths(v, f"{path}.")
    elif isinstance(data, list):
        for v in data:
            out |= _data_paths(v, prefix[:-1] + "[].")
    return out


def test_reference_sets_every_field():
    data, _ = load_yaml_with_lines(REFERENCE)
    # basic_auth excludes bearer_token_file; the reference shows it in a comment.
    exempt = {"prometheus.basic_auth", "prometheus.basic_auth.username", "prometheus.basic_auth.password_file"}
    present = {re.sub(r"caps\.[^.]+$", "caps", p) for p in _data_paths(data)}
    missing = _schema_paths(Policy) - exempt - present
    assert not missing, sorted(missing)
    assert "basic_auth:" in REFERENCE.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- JSON Schema
def _objects(node):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


def test_json_schema_is_valid_and_strict():
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    objects = list(_objects(schema))
    assert len(objects) >= 15
    assert all(o.get("additionalProperties") is False for o in objects)
    validator = jsonschema.Draft202012Validator(schema)
    for example in (MINIMAL, REFERENCE, *VALID):
        data, _ = load_yaml_with_lines(example)
        assert list(validator.iter_errors(data)) == [], example.name
    data, _ = load_yaml_with_lines(MINIMAL)
    data["workloads"][0]["scaling"]["max_replica"] = 3
    data["colour"] = "red"
    messages = sorted(e.message for e in validator.iter_errors(data))
    assert len(messages) == 2 and all("Additional properties are not allowed" in m for m in messages)


def test_json_schema_writes_durations_as_people_do():
    defs = policy_json_schema()["$defs"]
    assert defs["ForecastSettings"]["properties"]["lookback"]["default"] == "28d"
    assert defs["Workload"]["properties"]["pod_startup"]["default"] == "1m"
    duration = jsonschema.Draft202012Validator(defs["Scaling"]["properties"]["stabilization"])
    assert duration.is_valid("1h30m") and duration.is_valid(90) and not duration.is_valid("5 minutes")


# --------------------------------------------------------------------------- digest
def test_digest_ignores_formatting_and_sees_every_change():
    base = load_policy_text(MINIMAL_TEXT)
    reformatted = (
        "# a comment\nworkloads:\n  - scaling: {max_replicas: 500, min_replicas: 2}\n    pod_startup: 1m30s\n"
        "    demand: {per_replica: 1000.0, query: 'sum(rate(http_requests_total[5m]))'}\n"
        "    target: {name: web, namespace: default, kind: Deployment}\n    name: web\n"
        "events:\n  - {name: big-sale, kind: sale, start: '2026-11-11T00:00:00+08:00', "
        "peak: 2026-11-11T12:00:00Z, end: 2026-11-11T16:00:00Z}\napiVersion: ebbtide/v1\n"
    )
    assert policy_digest(load_policy_text(reformatted)) == policy_digest(base)
    assert re.fullmatch(r"[0-9a-f]{64}", policy_digest(base))
    changed = {
        policy_digest(load_policy_text(MINIMAL_TEXT.replace(old, new)))
        for old, new in [("max_replicas: 500", "max_replicas: 501"), ("90s", "91s"),
                         ("big-sale", "big-sale-2"), ("per_replica: 1000", "per_replica: 999"),
                         ("apiVersion: ebbtide/v1\n", "apiVersion: ebbtide/v1\ndry_run: true\n")]
    }
    assert len(changed) == 5 and policy_digest(base) not in changed


def test_load_policy_and_text_agree(tmp_path: Path):
    f = tmp_path / "p.yaml"
    f.write_text(MINIMAL_TEXT, encoding="utf-8")
    assert load_policy(f) == load_policy_text(MINIMAL_TEXT, "p.yaml")
    with pytest.raises(InputFileError) as info:
        load_policy(tmp_path / "absent.yaml")
    assert info.value.problems == [f"{tmp_path / 'absent.yaml'}: file not found"]


# --------------------------------------------------------------------------- docs
def test_docs_reference_is_up_to_date():
    current = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    assert docgen.render_into(current) == current, "run: python -m policies.docgen --write docs/policy.md"


def test_docgen_check_and_write_on_the_command_line(tmp_path, capsys):
    doc = tmp_path / "policy.md"
    fresh = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    doc.write_text(fresh.replace("| `min_replicas` |", "| `min_replicaz` |", 1), encoding="utf-8")
    assert docgen.main(["--check", str(doc)]) == 1
    assert capsys.readouterr().err == f"{doc} is stale: run python -m policies.docgen --write {doc}\n"
    assert docgen.main(["--write", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == fresh and docgen.main(["--check", str(doc)]) == 0
    doc.write_text("# no markers here\n", encoding="utf-8")
    assert docgen.main(["--check", str(doc)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {doc}: markers not found; the document must contain\n")
    assert docgen.main(["--write", str(tmp_path / "absent.md")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'absent.md'}: ")


def test_docs_document_every_field_with_a_description():
    docs = _doc_defaults()
    for model, _ in docgen._models(Policy):
        assert set(docs[model.__name__]) == {f.alias or n for n, f in model.model_fields.items()}
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def main(monkeypatch):
    """scaler.cli.main with only the subcommands whose modules exist (others are built in parallel)."""
    present = {k: v for k, v in cli.COMMANDS.items() if importlib.util.find_spec(v) is not None}
    assert present.get("policy") == "scaler.cli.policy"
    monkeypatch.setattr(cli, "COMMANDS", present)
    return cli.main


def test_cli_validate_ok_prints_one_summary_per_file(main, capsys):
    assert main(["policy", "validate", str(REFERENCE), str(FIXTURES / "valid" / "hpa-and-quality.yaml")]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and err == ""
    assert lines[0].startswith(f"{REFERENCE}: ok: 4 workload(s) (ingest, transcode, edge, api), 3 event(s), "
                               "bitrate 4 rungs/3 tiers/2 rules, dry-run, digest ")
    assert lines[0].endswith(policy_digest(load_policy(REFERENCE))[:12])


def test_cli_validate_reports_every_error_of_every_file(main, capsys):
    bad = [FIXTURES / "invalid" / n for n in ("scaling-bounds.yaml", "unknown-keys.yaml")]
    assert main(["policy", "validate", str(MINIMAL), *map(str, bad)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"{MINIMAL}: ok:")
    expected = [f"error: {line.replace(f.name, str(f), 1)}" for f in bad for line in _golden(f.with_suffix(".errors.txt"))]
    err_lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert err_lines == expected
    assert err.splitlines()[-1] == f"{len(expected)} error(s) in 2 of 3 file(s)"
    assert "Traceback" not in err


def test_cli_validate_warnings_and_strict(main, capsys):
    risky = FIXTURES / "valid" / "risky-settings.yaml"
    assert main(["policy", "validate", str(risky)]) == 0
    _, err = capsys.readouterr()
    golden = _golden(risky.with_suffix(".warnings.txt"))
    assert err.splitlines() == [f"warning: {w.replace(risky.name, str(risky), 1)}" for w in golden]
    assert main(["policy", "validate", "--strict", str(risky)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "warnings are errors with --strict"
    assert main(["policy", "validate", "--strict", "-q", str(REFERENCE)]) == 0
    assert capsys.readouterr().out == ""


def test_cli_validate_missing_file(main, capsys, tmp_path):
    assert main(["policy", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert f"error: {tmp_path / 'nope.yaml'}: file not found" in capsys.readouterr().err


def test_cli_schema_prints_the_json_schema(main, capsys):
    assert main(["policy", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == policy_json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed["additionalProperties"] is False and "apiVersion" in printed["required"]


def test_cli_policy_needs_a_subcommand(main, capsys):
    with pytest.raises(SystemExit) as info:
        main(["policy"])
    assert info.value.code == 2


def test_type_helpers_cover_the_schema():
    # docgen renders every annotation in the schema without falling back to a raw repr.
    text = docgen.reference_markdown()
    assert "typing." not in text and "<class" not in text and "NoneType" not in text


# --------------------------------------------------------------------------- bitrate.workload
BITRATE_FOR = """\
bitrate:
  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}]
  tiers: [{name: core, hd_floor: 720p}]
  workload: %s
"""


def test_bitrate_workload_defaults_to_the_first_and_must_name_a_workload():
    assert load_policy_text(MINIMAL_TEXT + BITRATE_FOR % "null").bitrate_workload == "web"
    assert load_policy_text(MINIMAL_TEXT + BITRATE_FOR % "web").bitrate_workload == "web"
    assert load_policy_text(MINIMAL_TEXT).bitrate_workload is None
    line = len((MINIMAL_TEXT + BITRATE_FOR).splitlines())  # `workload:` is the last line
    assert _errors(MINIMAL_TEXT + BITRATE_FOR % "edge") == [
        f"policy.yaml:{line} bitrate.workload: 'edge' is not a workload of this policy (web)"
    ]


def test_a_zero_length_event_is_warned_about_with_its_line():
    line = "  - {name: big-sale, kind: sale, start: 2026-11-10T16:00:00Z, peak: 2026-11-11T12:00:00Z, end: 2026-11-11T16:00:00Z}"
    assert line in MINIMAL_TEXT
    text = MINIMAL_TEXT.replace(line, line + "\n"
        "  - {name: flash, kind: joint_live, start: 2026-11-12T20:00:00Z, peak: 2026-11-12T20:00:00Z, end: 2026-11-12T20:00:00Z}")
    loaded = read_policy("policy.yaml", text)
    zero = [w for w in loaded.warnings if "zero-length" in w]
    assert len(zero) == 1 and zero[0].startswith("policy.yaml:4 events[1]: flash:"), loaded.warnings


def test_a_lift_on_a_long_declared_ramp_is_warned_about_with_its_line():
    line = "  - {name: big-sale, kind: sale, start: 2026-11-10T16:00:00Z, peak: 2026-11-11T12:00:00Z, end: 2026-11-11T16:00:00Z}"
    long = MINIMAL_TEXT.replace(line, line[:-1] + ", lift: 8}")
    warned = [w for w in read_policy("policy.yaml", long).warnings if "lifted peak" in w]
    assert warned == ["policy.yaml:3 events[0].lift: big-sale: with a lift, pre-scaling holds the lifted peak's "
                      "capacity from start on, 20h before the peak (web); declare start where the ramp really "
                      "begins, or set scaling.event_lookahead"]
    bounded = long.replace("scaling: {min_replicas: 2, max_replicas: 500}",
                           "scaling: {min_replicas: 2, max_replicas: 500, event_lookahead: 2h}")
    assert bounded != long
    assert not [w for w in read_policy("policy.yaml", bounded).warnings if "lifted peak" in w]
    short = long.replace("start: 2026-11-10T16:00:00Z", "start: 2026-11-11T08:00:00Z")  # a 4 h ramp
    assert not [w for w in read_policy("policy.yaml", short).warnings if "lifted peak" in w]
    assert not [w for w in read_policy("policy.yaml", MINIMAL_TEXT).warnings if "lifted peak" in w]  # no lift


def test_true_or_false_where_a_number_is_expected_is_refused():
    text = MINIMAL_TEXT.replace("{min_replicas: 2, max_replicas: 500}", "{min_replicas: true, max_replicas: 500}")
    assert _errors(text) == ["policy.yaml:9 workloads[0].scaling.min_replicas: expected a number, not true"]
    text = MINIMAL_TEXT.replace("per_replica: 1000", "per_replica: false")
    assert _errors(text) == ["policy.yaml:7 workloads[0].demand.per_replica: expected a number, not false"]
    # where a bool is the type, it is read as such
    text = MINIMAL_TEXT.replace("{min_replicas: 2, max_replicas: 500}",
                                "{min_replicas: 2, max_replicas: 500, burst_smoothing: false}")
    assert load_policy_text(text).workloads[0].scaling.burst_smoothing is False


def test_bad_indentation_is_told_as_such():
    text = MINIMAL_TEXT.replace("    pod_startup: 90s\n", "      pod_startup: 90s\n")
    (problem,) = _errors(text)
    assert problem.startswith("policy.yaml:") and "invalid YAML" in problem
    assert problem.endswith("(check the indentation of this line against the lines above it)")


def test_a_scale_down_fraction_of_zero_is_warned_to_still_let_a_pod_go_each_tick():
    """The planner sweep: `max_scale_down_fraction: 0` reads as "never scale down", but the step
    limit lets at least one pod go per tick (docs/planner.md step 5): said at validation."""
    from policies.loading import policy_warnings

    zero = load_policy_text(MINIMAL_TEXT.replace("max_replicas: 500}",
                                                 "max_replicas: 500, max_scale_down_fraction: 0}"))
    assert ((("workloads", 0, "scaling", "max_scale_down_fraction"),
             "0 still lets one pod go per tick (the step limit is at least one pod); to hold the count, set "
             "min_replicas, or a long scale_down_cooldown") in policy_warnings(zero))
    warned = [loc for loc, _ in policy_warnings(load_policy_text(MINIMAL_TEXT))]
    assert not [loc for loc in warned if "max_scale_down_fraction" in loc]


def test_a_currency_that_is_no_iso_4217_code_is_refused():
    """Any three capitals passed (`ABC`): the report then rounded and named a currency nobody
    bills in (finance sweep, F12). Known codes, with or without a minor unit, load."""
    text = MINIMAL_TEXT + "cost: {currency: ABC}\n"
    (problem,) = _errors(text)
    assert problem.startswith("policy.yaml:") and "cost.currency: 'ABC' is not an ISO 4217 currency code" in problem
    for code in ("USD", "CNY", "JPY", "KWD"):
        assert load_policy_text(MINIMAL_TEXT + f"cost: {{currency: {code}}}\n").cost.currency == code
