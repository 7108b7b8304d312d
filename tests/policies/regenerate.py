"""Regenerate the golden files next to the policy fixtures (see README.md in this folder).

    .venv/bin/python tests/policies/regenerate.py          # rewrite every golden file
    .venv/bin/python tests/policies/regenerate.py --check  # exit 1 if any golden file differs

invalid/NAME.yaml -> invalid/NAME.errors.txt: every error, one per line, as the loader reports it.
valid/NAME.yaml   -> valid/NAME.warnings.txt: every warning (empty file: none).
Messages name the fixture by its bare file name (NAME.yaml), so goldens do not depend on the
directory tests run from. Review the diff before committing: a golden file is a specification.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from policies.errors import InputFileError  # noqa: E402
from policies.loading import read_policy  # noqa: E402


def expected_errors(fixture: Path) -> list[str]:
    """The loader's errors for an invalid fixture (empty list if it unexpectedly loads)."""
    try:
        read_policy(fixture.name, fixture.read_text(encoding="utf-8"))
    except InputFileError as exc:
        return exc.problems
    return []


def expected_warnings(fixture: Path) -> list[str]:
    return list(read_policy(fixture.name, fixture.read_text(encoding="utf-8")).warnings)


def goldens() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for f in sorted((HERE / "invalid").glob("*.yaml")):
        errors = expected_errors(f)
        if not errors:
            raise SystemExit(f"{f} is in invalid/ but loads without error")
        out[f.with_suffix(".errors.txt")] = "".join(e + "\n" for e in errors)
    for f in sorted((HERE / "valid").glob("*.yaml")):
        out[f.with_suffix(".warnings.txt")] = "".join(w + "\n" for w in expected_warnings(f))
    return out


def main(argv: list[str]) -> int:
    stale = []
    for path, text in goldens().items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if '--check' in argv else 'wrote'}: {path.relative_to(HERE)}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
