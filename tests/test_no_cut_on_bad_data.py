"""No bitrate cut on absurd or stale data, and a breach's hold survives a failed write.

Cases (each failed before the fix; found by a read-only sweep on 2026-11-24):
- `lookback_peak` by hand: a broken metric's one-point spike in the middle, at the start or at
  the end of the lookback is left out; a jump that holds (two points) and a rise after zeros
  are kept; NaN and empty give None;
- the controller: one 5-minute sample of 3e9 three days back in a week at 3000 made the whole
  lookback look quiet and a `traffic_below: 0.5` rule cut the edge tier to 480p; now it is kept
  at 1080p, and the peak in the reason is 3000;
- the planner: a weak-network loss reading that is stale (older than `max_staleness`), has no
  sample time, or is no ratio (5.0, -0.1) gives no weak-network profile (no FEC change, no cap),
  with a step that says why; a fresh 0.10 still gives it;
- the controller: the loss sample's time comes from Prometheus (4 minutes old under a 1-minute
  `max_staleness`: no profile);
- the controller: a breach seen on a tick whose apply fails still holds the guard on the next
  tick (it was forgotten with the plan's memory, and scale-in resumed a minute after the
  breach), while the failed write still starts no cooldown (`after_failed_apply` by hand).
"""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest

import controller_fakes as f
import planner_helpers as h
from forecaster.history import StaticMetricsSource
from policies.loading import load_policy_text
from scaler.controller import AuditLog, Controller, LiveForecasterCache
from scaler.memories import after_failed_apply
from scaler.metrics import ControllerMetrics
from scaler.planning import plan
from scaler.plans import PlannerMemory
from scaler.safety import lookback_peak

nan = float("nan")
LADDER = """\
bitrate:
  ladder: [{name: 1080p, kbps: 6000}, {name: 720p, kbps: 3000}, {name: 480p, kbps: 1200}]
  tiers: [{name: core, hd_floor: 720p}, {name: edge, hd_floor: 480p}]
"""


def test_lookback_peak_leaves_out_what_no_traffic_makes():
    flat = [3000.0] * 20
    assert lookback_peak(flat) == 3000.0
    for at in (0, 10, 19):  # start, middle, end
        v = list(flat)
        v[at] = 3e9
        assert lookback_peak(v) == 3000.0, at
    held = flat[:10] + [9e5, 9e5] + flat[12:]  # a jump that holds is traffic (a viral show)
    assert lookback_peak(held) == 9e5
    assert lookback_peak([0.0] * 10 + [500.0]) == 500.0  # a shop opening after a closed night
    assert lookback_peak([3000.0, nan, 4000.0]) == 4000.0
    assert lookback_peak([nan, nan]) is None and lookback_peak([]) is None


def _controller(source, cluster=None):
    return Controller(f.Clock(), source, cluster or f.FakeCluster({"edge": 30}),
                      LiveForecasterCache(f.factory_of(f.ConstantModel)),
                      metrics=ControllerMetrics(), audit=AuditLog(io.StringIO()))


def test_one_absurd_sample_in_the_history_cuts_no_bitrate():
    policy = load_policy_text(f.policy_yaml() + LADDER
                              + "  rules: [{name: quiet, traffic_below: 0.5, caps: {edge: 480p}}]\n")
    n = 8 * 24 * 12 + 1
    values = np.full(n, 3000.0)
    values[n - 3 * 24 * 12] = 3e9  # one 5-minute point three days ago
    src = StaticMetricsSource({f.DEMAND_Q: f.series(values, name=f.DEMAND_Q),
                               f.SLI_Q: f.series([0.005] * n, name=f.SLI_Q)})
    out = _controller(src).tick(policy, dry_run=False, fit=True).outcomes[0]
    assert {c.tier: c.rung for c in out.plan.bitrate}["edge"] == "1080p"
    rules = h.step(out.plan, "bitrate:rules").reason
    assert "not below 0.5 x peak 3000 (the highest 5m point" in rules, rules


WEAK = {"ladder": [{"name": "1080p", "kbps": 6000}, {"name": "720p", "kbps": 3000}, {"name": "480p", "kbps": 1200}],
        "tiers": [{"name": "core", "hd_floor": "720p"}, {"name": "edge", "hd_floor": "480p"}],
        "weak_network": {"loss_above": 0.05, "cap": "480p", "fec_profile": "aggressive"}}


@pytest.mark.parametrize("loss, age, why", [
    (0.10, timedelta(minutes=6), "is stale (sample 6m old"),
    (0.10, None, "has no sample time"),
    (5.0, timedelta(0), "is no ratio (outside 0..1)"),
    (-0.1, timedelta(0), "is no ratio (outside 0..1)"),
    (0.10, timedelta(0), None),
])
def test_a_weak_network_loss_that_cannot_be_used_gives_no_profile(loss, age, why):
    wl = h.workload()
    pol = h.policy(wl, bitrate=WEAK)  # max_staleness 5m
    at = None if age is None else h.NOW - age
    pl = plan(h.trusted(h.flat(1000)), h.obs(1000, weak_network_loss=loss, weak_network_loss_at=at), wl, pol,
              h.state(20, caps={"core": "1080p", "edge": "1080p"}), h.NOW)
    got = [(c.tier, c.fec_profile, c.weak_network_rung) for c in pl.bitrate]
    if why is None:
        assert got == [("core", "aggressive", "720p"), ("edge", "aggressive", "480p")]
        assert all(s.name != "bitrate:weak_network" for s in pl.steps)
    else:
        assert got == [("core", "standard", None), ("edge", "standard", None)]
        reason = h.step(pl, "bitrate:weak_network").reason
        assert reason.startswith(f"packet-loss reading {loss:g} {why}") and reason.endswith("no weak-network profile")


def test_the_controller_dates_the_loss_sample():
    loss_q = "weak_loss_ratio"
    policy = load_policy_text(f.policy_yaml().replace("max_staleness: 5m", "max_staleness: 1m") + LADDER
                              + f"  weak_network: {{loss_query: '{loss_q}', loss_above: 0.05, cap: 480p}}\n")
    n = 8 * 24 * 12 + 1
    got = {}
    for age in (0, 4):
        src = StaticMetricsSource({
            f.DEMAND_Q: f.series([3000.0] * n, name=f.DEMAND_Q), f.SLI_Q: f.series([0.005] * n, name=f.SLI_Q),
            loss_q: f.series([0.10] * 10, end=f.NOW - timedelta(minutes=age), step=timedelta(minutes=1), name=loss_q)})
        out = _controller(src).tick(policy, dry_run=False, fit=True).outcomes[0]
        got[age] = {c.tier: c.weak_network_rung for c in out.plan.bitrate}
    assert got == {0: {"core": "720p", "edge": "480p"}, 4: {"core": None, "edge": None}}


def test_a_breach_on_a_tick_whose_write_failed_still_holds_the_guard():
    n = 8 * 24 * 12 + 1
    sli = f.series([0.005] * 60 + [0.05, 0.005], end=f.NOW + timedelta(minutes=1), step=timedelta(minutes=1),
                   name=f.SLI_Q)  # a breach now, back under the threshold a minute later
    src = StaticMetricsSource({f.DEMAND_Q: f.series([3000.0] * n, name=f.DEMAND_Q), f.SLI_Q: sli})
    clock, cluster = f.Clock(), f.FakeCluster({"edge": 40}, fail_apply=True)
    c = Controller(clock, src, cluster, LiveForecasterCache(f.factory_of(f.ConstantModel)),
                   metrics=ControllerMetrics(), audit=AuditLog(io.StringIO()))
    first = c.tick(f.make_policy(), dry_run=False, fit=True).outcomes[0]
    assert first.plan.guard_active and first.error is not None
    cluster.fail_apply = False
    clock.advance(timedelta(minutes=1))
    second = c.tick(f.make_policy(), dry_run=False, fit=True).outcomes[0]
    assert second.plan.guard_active and second.plan.target_replicas == 40  # held: 3000 alone needs 33
    assert "guard held until 2026-11-20T12:15:00+00:00" in h.step(second.plan, "quality_guard").reason


def test_after_failed_apply_keeps_what_was_observed_and_no_action():
    t = h.NOW
    before = PlannerMemory(last_scale_up_at=t - timedelta(hours=1), burst_pods=2)
    planned = PlannerMemory(recommendations=((t, 9),), last_scale_up_at=t, last_scale_down_at=t, guard_until=t,
                            guard_actions=("freeze_scale_in",), last_demand=900.0, burst_pods=5,
                            last_step_down_at=t, collapse_since=t, jump_since=t, guard_breach="b")
    kept = after_failed_apply(before, planned)
    assert kept == PlannerMemory(recommendations=((t, 9),), last_scale_up_at=t - timedelta(hours=1),
                                 guard_until=t, guard_actions=("freeze_scale_in",), last_demand=900.0,
                                 burst_pods=2, collapse_since=t, jump_since=t, guard_breach="b")
