"""Ebb kernels (forecaster/events.py `EbbKernel`): the exponential and the long-tailed power law.

Cases (hand-computed values, no Prophet):
- EbbKernel.share_left: exponential exp(-t/tau) (1/e at tau); power law (1 + t/tau)^-alpha
  (alpha 1: 1/2 at tau, 1/4 at 3 tau, 1/10 at 9 tau; alpha 2: 1/4 at tau); 1 at t = 0
- the power law with alpha -> large and tau = alpha * T tends to the exponential of T
- decay/shape/settle with a power-law kernel on an hourly grid (midpoints): 0 before the end,
  the kernel after it; settle = 1 - decay after the end; shape = 1 between peak and end
- a bare timedelta and EbbKernel(tau) (alpha 0) give bit-identical features
- event_features accepts kernels per event; text labels; ordering; bad kernels refused
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import forecaster.events as evf
from policies.events import Event

H = timedelta(hours=1)
EV = Event(name="launch", kind="joint_live", start=pd.Timestamp("2026-03-01T00:00:00Z").to_pydatetime(),
           peak=pd.Timestamp("2026-03-01T02:00:00Z").to_pydatetime(),
           end=pd.Timestamp("2026-03-01T04:00:00Z").to_pydatetime())
GRID = pd.date_range("2026-03-01T00:00:00Z", periods=24, freq="h")


def test_share_left_hand_values():
    exp = evf.EbbKernel(timedelta(hours=10))
    assert exp.share_left(np.array([0.0]))[0] == 1.0
    assert exp.share_left(np.array([36000.0]))[0] == pytest.approx(math.exp(-1))
    p1 = evf.EbbKernel(timedelta(hours=12), 1.0)
    t = np.array([0.0, 12, 36, 108]) * 3600
    np.testing.assert_allclose(p1.share_left(t), [1.0, 0.5, 0.25, 0.1])
    p2 = evf.EbbKernel(timedelta(hours=12), 2.0)
    np.testing.assert_allclose(p2.share_left(np.array([12 * 3600.0])), [0.25])


def test_power_law_tends_to_exponential():
    t = np.linspace(0, 48, 9) * 3600
    target = evf.EbbKernel(timedelta(hours=8)).share_left(t)
    near = evf.EbbKernel(timedelta(hours=8 * 1000), 1000.0).share_left(t)
    np.testing.assert_allclose(near, target, atol=2e-3)


def test_power_features_on_hourly_grid():
    k = evf.EbbKernel(timedelta(hours=1), 1.0)
    d = evf.decay(GRID, EV, k, H)  # midpoints 00:30, 01:30, ...; end 04:00
    assert (d[:4] == 0).all()
    # 04:30 -> 0.5 h after the end: 1 / 1.5; 05:30 -> 1 / 2.5; 07:30 -> 1 / 4.5
    np.testing.assert_allclose(d[[4, 5, 7]], [1 / 1.5, 1 / 2.5, 1 / 4.5])
    st = evf.settle(GRID, EV, k, H)
    np.testing.assert_allclose(st[4:], 1.0 - d[4:])
    assert (st[:4] == 0).all()
    sh = evf.shape(GRID, EV, k, H)
    np.testing.assert_allclose(sh[:2], [0.25, 0.75])  # ramp 00:00 -> 02:00 at 00:30, 01:30
    np.testing.assert_allclose(sh[2:4], [1.0, 1.0])
    np.testing.assert_allclose(sh[4:], d[4:])


def test_bare_tau_is_the_exponential_kernel_bit_for_bit():
    tau = timedelta(hours=5)
    for fn in (evf.decay, evf.shape, evf.settle):
        assert np.array_equal(fn(GRID, EV, tau, H), fn(GRID, EV, evf.EbbKernel(tau), H))
    np.testing.assert_allclose(evf.decay(GRID, EV, tau, H)[4], math.exp(-0.5 / 5))


def test_event_features_with_kernels():
    f = evf.event_features(GRID, [EV], {"launch": evf.EbbKernel(timedelta(hours=1), 2.0)}, H,
                           with_settle=True, with_tail=True)
    assert list(f.columns) == ["launch:shape", "launch:inside", "launch:tail", "launch:settle"]
    np.testing.assert_allclose(f["launch:tail"].iloc[4], 1 / 1.5 ** 2)
    np.testing.assert_allclose(f["launch:settle"].iloc[4], 1 - 1 / 1.5 ** 2)


def test_text_order_and_refusals():
    assert evf.EbbKernel(timedelta(hours=16)).text() == "16h"
    assert evf.EbbKernel(timedelta(hours=16), 1.0).text() == "16h^-1"
    assert evf.as_kernel(timedelta(hours=3)) == evf.EbbKernel(timedelta(hours=3), 0.0)
    ks = [evf.EbbKernel(timedelta(hours=8), 1.0), evf.EbbKernel(timedelta(hours=2)), evf.EbbKernel(timedelta(hours=8))]
    assert sorted(ks) == [ks[1], ks[2], ks[0]]
    with pytest.raises(ValueError, match="tau must be positive"):
        evf.EbbKernel(timedelta(0))
    with pytest.raises(ValueError, match="alpha"):
        evf.EbbKernel(H, -1.0)
    with pytest.raises(ValueError, match="tau must be positive"):
        evf.decay(GRID, EV, timedelta(hours=-1), H)
