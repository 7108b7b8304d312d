"""Layering contracts (.importlinter at the repo root), checked by the real `lint-imports`.

Cases:
- `lint-imports` exits 0: policies <- forecaster <- scaler, policies imports no I/O client or
  model library, and only forecaster.model imports prophet/cmdstanpy. Its report is printed on
  failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} missing: install the test extra (pip install -e '.[test]')"
    proc = subprocess.run([str(lint), "--config", str(REPO / ".importlinter")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"lint-imports failed:\n{proc.stdout}\n{proc.stderr}"
