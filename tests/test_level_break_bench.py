"""bench/level_break.py's own generator and summary, without fitting anything.

Cases:
- a stepped trace is its control (the same seeded draws) times the step's factor from `age`
  days before the cut exactly, and equal to it before (lognormal seed; a Poisson seed draws its
  counts from the stepped mean, so only the mean is compared there: its total over the stepped
  days is within 10% of factor x the control's); the factor is outside [0.77, 1.3]; seeds 2, 5,
  8 are 5-minute, the others hourly;
- the summary counts fires, cuts above 1, the worst and the geometric mean per step age from
  hand-made rows (geometric mean of 0.5 and 2.0 is 1.0).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("level_break")


def test_a_step_multiplies_the_control_from_its_day(bench):
    for seed in range(6):
        control, label, factor = bench.trace(seed, None)
        assert not 0.77 < factor < 1.3
        assert control.step == (timedelta(minutes=5) if seed % 3 == 2 else timedelta(hours=1))
        for age in (1, 3):
            stepped, _, f2 = bench.trace(seed, age)
            assert f2 == factor
            at = stepped.index >= bench.CUT - pd.Timedelta(days=age)
            a, b = control.values.to_numpy(), stepped.values.to_numpy()
            assert at.sum() == int(timedelta(days=bench.DAYS - 35 + age) / control.step)
            if "lognormal" in label:
                np.testing.assert_allclose(b[~at], a[~at])
                np.testing.assert_allclose(b[at], a[at] * factor, rtol=1e-3, atol=2e-3)
            else:
                assert b[at].sum() == pytest.approx(factor * a[at].sum(), rel=0.1)


def test_summary_by_hand(bench):
    rows = [
        {"age_days": 2, "ratio": 0.5, "ratio_off": 4.0, "coverage": 0.95, "coverage_off": 0.5, "break": True},
        {"age_days": 2, "ratio": 2.0, "ratio_off": 1.0, "coverage": 0.8, "coverage_off": 0.8, "break": False},
        {"age_days": None, "ratio": 0.9, "ratio_off": 0.9, "coverage": 0.9, "coverage_off": 0.9, "break": False},
    ]
    two, control = bench.summary(rows)
    assert two.startswith("step 2 d before") and "2 cuts, break fired on 1" in two
    assert "(geometric mean) 2.00 -> 1.00" in two and "> 1 on 1 -> 1" in two and "worst 4.00 -> 2.00" in two
    assert "coverage >= 0.9 on 0 -> 1" in two
    assert control.startswith("no step (control)") and "0.90 -> 0.90" in control
