"""Bitrate caps per tier (scaler.bitrate), hand-computed on a four-rung ladder
(1080p 4500, 720p 2500, 480p 1200, 360p 600 kbps) with tiers core (floor 720p), silent (floor
480p) and edge (floor 360p).

Cases:
- time-of-day window in the rule's zone (Asia/Shanghai), wrapping midnight, outside the window;
- cuts stepped one rung per tick (or step_rungs), restores straight to the top;
- the lowest applicable cap wins; never below a tier's floor (also when the written cap is below
  it); unknown tiers start from the ladder top;
- traffic_below relative to the peak; unknown level or peak -> no cut;
- after_event only in an ebb;
- guard restores every tier to the ladder top; allow_cuts False withholds cuts but restores;
- weak-network profile: FEC and weak-viewer cap above the floor; unknown loss -> standard;
- egress estimate in GB per hour; unreadable timezone -> rule skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from planner_helpers import MIN, flat
from policies.schema import Bitrate
from scaler.bitrate import BitrateContext, egress_gb_per_hour, plan_bitrate, traffic_level
from scaler.plans import Observation

LADDER = [{"name": "1080p", "kbps": 4500}, {"name": "720p", "kbps": 2500},
          {"name": "480p", "kbps": 1200}, {"name": "360p", "kbps": 600}]
TIERS = [{"name": "core", "hd_floor": "720p"}, {"name": "silent", "hd_floor": "480p"},
         {"name": "edge", "hd_floor": "360p"}]
NIGHT = {"name": "night", "hours": "01:00-07:00", "timezone": "Asia/Shanghai",
         "caps": {"core": "360p", "silent": "480p", "edge": "360p"}}
# 2026-11-20T20:00Z is 04:00 on 21 November in Shanghai (UTC+8): inside `night`
AT_NIGHT = datetime(2026, 11, 20, 20, 0, tzinfo=timezone.utc)
AT_NOON = datetime(2026, 11, 21, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
CTX = BitrateContext(tick=MIN)
NO_OBS = Observation(None, None)


def bitrate(rules=(NIGHT,), **kw) -> Bitrate:
    return Bitrate.model_validate({"ladder": LADDER, "tiers": TIERS, "rules": list(rules), **kw})


def rungs(caps) -> dict[str, str]:
    return {c.tier: c.rung for c in caps}


def test_a_written_cap_the_ladder_does_not_know_gets_the_top_before_any_cut():
    # a hand edit or another policy's ladder: what viewers get now is unknown, so no cut from it
    br = bitrate()
    caps, steps = plan_bitrate(br, None, NO_OBS, AT_NIGHT, {"core": "999p", "silent": "1080p"}, False, CTX)
    assert rungs(caps) == {"core": "1080p", "silent": "720p", "edge": "720p"}
    assert "the cap written, '999p', is no rung of the ladder: the ladder top this tick" in steps[1].reason
    caps, _ = plan_bitrate(br, None, NO_OBS, AT_NIGHT, rungs(caps), False, CTX)
    assert rungs(caps)["core"] == "720p"  # cut from the next tick, to its floor


def test_night_rule_steps_down_one_rung_per_tick_and_keeps_floors():
    br = bitrate()
    caps, steps = plan_bitrate(br, None, NO_OBS, AT_NIGHT, {}, False, CTX)
    assert rungs(caps) == {"core": "720p", "silent": "720p", "edge": "720p"}
    assert [s.name for s in steps] == ["bitrate:rules", "bitrate:core", "bitrate:silent", "bitrate:edge"]
    assert steps[0].after == "night"
    assert "raised to the tier's floor 720p" in steps[1].reason and "no cap written yet" in steps[1].reason
    caps, _ = plan_bitrate(br, None, NO_OBS, AT_NIGHT, rungs(caps), False, CTX)
    assert rungs(caps) == {"core": "720p", "silent": "480p", "edge": "480p"}
    caps, _ = plan_bitrate(br, None, NO_OBS, AT_NIGHT, rungs(caps), False, CTX)
    assert rungs(caps) == {"core": "720p", "silent": "480p", "edge": "360p"}
    assert {c.tier: c.max_kbps for c in caps} == {"core": 2500, "silent": 1200, "edge": 600}


def test_step_rungs_two():
    caps, _ = plan_bitrate(bitrate(step_rungs=2), None, NO_OBS, AT_NIGHT, {}, False, CTX)
    assert rungs(caps) == {"core": "720p", "silent": "480p", "edge": "480p"}


def test_restore_goes_straight_to_the_top_outside_the_window():
    low = {"core": "720p", "silent": "480p", "edge": "360p"}
    caps, steps = plan_bitrate(bitrate(), None, NO_OBS, AT_NOON, low, False, CTX)
    assert rungs(caps) == {"core": "1080p", "silent": "1080p", "edge": "1080p"}
    assert "outside 01:00-07:00 Asia/Shanghai (local 12:00)" in steps[0].reason
    assert "restored from 360p to 1080p" in steps[3].reason


@pytest.mark.parametrize(("utc_hour", "inside"), [(14, True), (21, True), (22, False), (13, False)])
def test_window_wrapping_midnight(utc_hour, inside):
    # 22:00-06:00 Shanghai = 14:00-22:00 UTC
    rule = dict(NIGHT, hours="22:00-06:00")
    now = datetime(2026, 11, 20, utc_hour, 0, tzinfo=timezone.utc)
    caps, _ = plan_bitrate(bitrate([rule]), None, NO_OBS, now, {"edge": "720p"}, False, CTX)
    assert rungs(caps)["edge"] == ("480p" if inside else "1080p")


def test_lowest_applicable_cap_wins():
    mild = {"name": "mild", "caps": {"edge": "720p"}}
    caps, _ = plan_bitrate(bitrate([mild, NIGHT]), None, NO_OBS, AT_NIGHT, {"edge": "480p"}, False, CTX)
    assert rungs(caps)["edge"] == "360p"
    caps, _ = plan_bitrate(bitrate([mild, NIGHT]), None, NO_OBS, AT_NOON, {"edge": "480p"}, False, CTX)
    assert rungs(caps)["edge"] == "720p"


def test_written_cap_below_floor_is_raised_to_the_floor():
    caps, _ = plan_bitrate(bitrate(), None, NO_OBS, AT_NIGHT, {"core": "360p"}, False, CTX)
    assert rungs(caps)["core"] == "720p"
    caps, _ = plan_bitrate(bitrate(), None, NO_OBS, AT_NIGHT, {"core": "no-such-rung"}, False, CTX)
    assert rungs(caps)["core"] == "1080p"  # an unknown written cap: the top first (test above)


def test_traffic_below_relative_to_peak():
    quiet = {"name": "quiet", "traffic_below": 0.5, "caps": {"edge": "480p"}}
    br = bitrate([quiet])
    now = AT_NOON
    fc = flat(300, start=now)  # yhat 300 over the next tick
    caps, steps = plan_bitrate(br, fc, NO_OBS, now, {"edge": "720p"}, False, BitrateContext(MIN, peak_demand=1000))
    assert rungs(caps)["edge"] == "480p" and "below 0.5 x peak 1000" in steps[0].reason
    # demand observed now above the threshold: the level is the higher of the two
    ctx = BitrateContext(MIN, peak_demand=1000, demand_now=600)
    assert rungs(plan_bitrate(br, fc, NO_OBS, now, {"edge": "720p"}, False, ctx)[0])["edge"] == "1080p"
    # unknown peak or level: no cut
    assert rungs(plan_bitrate(br, fc, NO_OBS, now, {"edge": "720p"}, False, CTX)[0])["edge"] == "1080p"
    ctx = BitrateContext(MIN, peak_demand=1000)
    assert rungs(plan_bitrate(br, None, NO_OBS, now, {"edge": "720p"}, False, ctx)[0])["edge"] == "1080p"


def test_traffic_level_takes_max_over_next_tick():
    now = AT_NOON
    fc = flat(100, start=now)
    assert traffic_level(fc, now, MIN, None) == 100
    assert traffic_level(fc, now, MIN, 250.0) == 250
    assert traffic_level(None, now, MIN, None) is None


def test_after_event_only_in_an_ebb():
    ebb = {"name": "ebb", "after_event": True, "caps": {"edge": "480p"}}
    ended = AT_NOON - timedelta(days=2)
    caps, _ = plan_bitrate(bitrate([ebb]), None, NO_OBS, AT_NOON, {"edge": "720p"}, False,
                           BitrateContext(MIN, ebb_since=ended))
    assert rungs(caps)["edge"] == "480p"
    caps, _ = plan_bitrate(bitrate([ebb]), None, NO_OBS, AT_NOON, {"edge": "720p"}, False, CTX)
    assert rungs(caps)["edge"] == "1080p"


def test_guard_restores_every_tier_to_the_top():
    low = {"core": "720p", "silent": "480p", "edge": "360p"}
    caps, steps = plan_bitrate(bitrate(), None, NO_OBS, AT_NIGHT, low, True, CTX)
    assert set(rungs(caps).values()) == {"1080p"}
    assert all("quality guard" in s.reason for s in steps)


def test_no_cuts_while_guard_freezes_but_restores_allowed():
    mild = {"name": "mild", "caps": {"core": "720p", "silent": "720p"}}
    caps, _ = plan_bitrate(bitrate([mild, NIGHT]), None, NO_OBS, AT_NIGHT,
                           {"core": "1080p", "silent": "480p", "edge": "720p"}, False, CTX, allow_cuts=False)
    # night would cut core (to its floor) and edge and keep silent at 480p: cuts withheld
    assert rungs(caps) == {"core": "1080p", "silent": "480p", "edge": "720p"}
    caps, _ = plan_bitrate(bitrate([mild]), None, NO_OBS, AT_NIGHT,
                           {"core": "1080p", "silent": "480p", "edge": "720p"}, False, CTX, allow_cuts=False)
    # mild alone lifts silent to 720p and edge to the top: restores still happen
    assert rungs(caps) == {"core": "1080p", "silent": "720p", "edge": "1080p"}


def test_weak_network_profile():
    br = bitrate([], weak_network={"loss_above": 0.05, "fec_profile": "aggressive", "cap": "480p"})
    lossy = Observation(None, None, weak_network_loss=0.08)
    caps, steps = plan_bitrate(br, None, lossy, AT_NOON, {}, False, CTX)
    by = {c.tier: c for c in caps}
    assert {c.fec_profile for c in caps} == {"aggressive"}
    assert by["core"].rung == "1080p" and by["core"].weak_network_rung == "720p"  # floor wins
    assert by["edge"].weak_network_rung == "480p" and by["edge"].weak_network_kbps == 1200
    assert "FEC aggressive" in steps[-1].reason
    clean = Observation(None, None, weak_network_loss=0.01)
    assert {c.fec_profile for c in plan_bitrate(br, None, clean, AT_NOON, {}, False, CTX)[0]} == {"standard"}
    assert {c.weak_network_rung for c in plan_bitrate(br, None, NO_OBS, AT_NOON, {}, False, CTX)[0]} == {None}


def test_egress_estimate():
    assert egress_gb_per_hour(1000, 2500) == pytest.approx(1125.0)  # 1000 x 2.5 Mbit/s x 3600 s / 8
    seen = Observation(None, None, tier_viewers=(("core", 1000.0),))
    caps, _ = plan_bitrate(bitrate(), None, seen, AT_NIGHT, {"core": "720p"}, False, CTX)
    by = {c.tier: c for c in caps}
    assert by["core"].egress_gbph == pytest.approx(1125.0)
    assert by["edge"].egress_gbph is None


def test_unreadable_timezone_skips_the_rule():
    br = bitrate()
    broken = br.model_copy(update={"rules": [br.rules[0].model_copy(update={"timezone": "Mars/Olympus"})]})
    caps, steps = plan_bitrate(broken, None, NO_OBS, AT_NIGHT, {"edge": "720p"}, False, CTX)
    assert rungs(caps)["edge"] == "1080p" and "unknown timezone" in steps[0].reason
