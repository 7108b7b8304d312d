"""A viral spike, for the replay bench: a jump far beyond everything the history knows.

Writes DIR/viral.csv (hourly `ts,value`, 35 days: a daily cycle around 100, Poisson counts) and
DIR/viral.yaml (its calendar: a joint live event at the spike). On day 20 at 12:00 UTC the traffic
jumps to 3000x its level and declines as a power law, (1 + t / 2 h)^-1.3, over the weeks after:
a celebrity's shout-out, a clip that went viral. The planner treats a sample over 100x every
known level as a possible broken metric (`scaling.jump_confirm`, docs/planner.md); this trace
shows what that rule costs when the jump is real:

    .venv/bin/python bench/viral_spike.py /tmp/viral
    .venv/bin/python bench/replay.py --csv /tmp/viral/viral.csv --events /tmp/viral/viral.yaml \\
        [--jump-confirm 1000d]     # 1000d: a jump is never believed (the rule before jump_confirm)

Seeded: the same files on every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-03-01T00:00:00Z")
SPIKE = pd.Timestamp("2026-03-20T12:00:00Z")
EVENTS = ('events:\n  - {name: viral, kind: joint_live, start: "2026-03-20T11:00:00Z", '
          'peak: "2026-03-20T12:00:00Z", end: "2026-03-20T14:00:00Z"}\n')


def trace(seed: int = 5) -> pd.DataFrame:
    """The `ts,value` rows (module docstring)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=35 * 24, freq="1h")
    hour = np.asarray(idx.hour, dtype=float)
    base = 100 * (1 + 0.6 * np.sin((hour - 14) / 24 * 2 * np.pi))
    t = np.asarray((idx - SPIKE) / pd.Timedelta(hours=1), dtype=float)
    spike = np.where(t >= 0, 3000 * (1 + np.maximum(t, 0) / 2.0) ** -1.3, 0.0)
    return pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": rng.poisson(base * (1 + spike))})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="folder to write viral.csv and viral.yaml into (created)")
    a = ap.parse_args(argv)
    a.dir.mkdir(parents=True, exist_ok=True)
    trace().to_csv(a.dir / "viral.csv", index=False)
    (a.dir / "viral.yaml").write_text(EVENTS)
    print(f"wrote {a.dir / 'viral.csv'} and {a.dir / 'viral.yaml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
