"""`ebbtide policy validate FILE...` and `ebbtide policy schema`.

validate: every file is checked, and every problem of every file is printed (`error: file:line
path: message` on stderr, exit 2); valid files print a one-line summary on stdout, and risky
but valid settings print `warning: file:line path: message` on stderr (exit 0, or 2 with
--strict). schema: the JSON Schema of a policy file, for editors (yaml-language-server etc.).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "policy", help="validate policy files, print the policy JSON Schema",
        description="Work with Ebbtide policy files (field reference: docs/policy.md).",
    )
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    sub.required = True
    validate = sub.add_parser(
        "validate", help="check policy files; print every error with file, line and field",
        description="Check policy files. Exit 0 when all are valid (one summary line each), "
        "2 with every error of every file.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="policy YAML file(s)")
    validate.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 2)")
    validate.add_argument("--quiet", "-q", action="store_true", help="print nothing when valid")
    schema = sub.add_parser(
        "schema", help="print the policy JSON Schema (for editors)",
        description="Print the JSON Schema (draft 2020-12) of a policy file. Editors using "
        "yaml-language-server pick it up from a `# yaml-language-server: $schema=PATH` comment.",
    )
    schema.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2; 0: one line)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        return _schema(args)
    return _validate(args)


def _schema(args: argparse.Namespace) -> int:
    from policies.loading import policy_json_schema

    indent = args.indent if args.indent > 0 else None
    try:
        print(json.dumps(policy_json_schema(), indent=indent, sort_keys=False, ensure_ascii=False))
        sys.stdout.flush()
    except BrokenPipeError:  # `ebbtide policy schema | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
    return 0


def _validate(args: argparse.Namespace) -> int:
    from policies.errors import InputFileError
    from policies.loading import read_policy

    errors: list[str] = []
    bad_files = 0
    warned = False
    for file in args.files:
        try:
            loaded = read_policy(file)
        except InputFileError as exc:
            errors.extend(exc.problems)
            bad_files += 1
            continue
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        warned = warned or bool(loaded.warnings)
        if not args.quiet:
            print(summary(loaded))
    for problem in errors:
        print(f"error: {problem}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {bad_files} of {len(args.files)} file(s)", file=sys.stderr)
        return 2
    if warned and args.strict:
        print("warnings are errors with --strict", file=sys.stderr)
        return 2
    return 0


def summary(loaded) -> str:
    """One line: `FILE: ok: 4 workloads (a, b), 3 events, bitrate 4 rungs/3 tiers, dry-run, digest 1a2b..`."""
    p = loaded.policy
    names = ", ".join(w.name for w in p.workloads)
    bitrate = (f"bitrate {len(p.bitrate.ladder)} rungs/{len(p.bitrate.tiers)} tiers/{len(p.bitrate.rules)} rules"
               if p.bitrate else "no bitrate planning")
    mode = "dry-run" if p.dry_run else "live"
    n_warn = f", {len(loaded.warnings)} warning(s)" if loaded.warnings else ""
    return (f"{loaded.file}: ok: {len(p.workloads)} workload(s) ({names}), {len(p.events)} event(s), "
            f"{bitrate}, {mode}, digest {loaded.digest[:12]}{n_warn}")
