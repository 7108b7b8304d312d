"""The scaled log1p transform (forecaster.transforms), by hand and as a property.

Cases:
- scale = median of positive values (zeros and NaN ignored), 1.0 without positives
- fraction: scale = fraction x that median; a non-positive fraction is refused
- forward/inverse hand values: y = scale -> log 2, y = 3*scale -> log 4, 0 -> 0
- exact round trip for any y >= 0 (hypothesis), NaN kept
- negatives clipped: forward(-1) = 0, inverse(z < 0) = 0
- a non-positive or non-finite scale is refused
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecaster.transforms import Log1pScaled


def test_scale_is_median_of_positive_values():
    assert Log1pScaled.fit(np.array([0, 2, 4, 6, 100, np.nan])).scale == 5.0
    assert Log1pScaled.fit(np.array([0.0, 0.0])).scale == 1.0


def test_hand_values():
    t = Log1pScaled(5.0)
    np.testing.assert_allclose(t.forward(np.array([0.0, 5.0, 15.0])), [0.0, math.log(2), math.log(4)])
    np.testing.assert_allclose(t.inverse(np.array([0.0, math.log(2), math.log(4)])), [0.0, 5.0, 15.0])
    assert t.describe() == "log1p(y / 5)"


@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=50),
       st.floats(min_value=1e-3, max_value=1e6))
def test_round_trip(values, scale):
    t = Log1pScaled(scale)
    y = np.array(values)
    np.testing.assert_allclose(t.inverse(t.forward(y)), y, rtol=1e-9, atol=1e-9 * scale)


def test_nan_kept_and_negatives_clipped():
    t = Log1pScaled(2.0)
    z = t.forward(np.array([np.nan, -1.0]))
    assert math.isnan(z[0]) and z[1] == 0.0
    assert t.inverse(np.array([-0.5]))[0] == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_bad_scale_refused(bad):
    with pytest.raises(ValueError):
        Log1pScaled(bad)


def test_fraction_of_median():
    assert Log1pScaled.fit(np.array([0.0, 1.0, 2.0, 3.0, 100.0]), fraction=0.1).scale == pytest.approx(0.25)
    assert Log1pScaled.fit(np.array([0.0, np.nan]), fraction=0.1).scale == 1.0
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError):
            Log1pScaled.fit(np.array([1.0]), fraction=bad)
