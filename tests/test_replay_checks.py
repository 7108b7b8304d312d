"""A replay whose figures the workload's limits decide says so (scaler.replay.checks).

A trace in another unit than `demand.per_replica` (or larger or smaller than the workload was
sized for) replays without error, but max_replicas or min_replicas then decides every
strategy's figures. The notes name the limit, the share of the replay and the field to change.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from policies.loading import load_policy_text
from scaler.cli import main
from scaler.replay import replay
from scaler.replay.checks import fit_notes
from test_replay import (  # the replay tests' traces, policy and fake forecaster
    POLICY, LastDayPeak, _sale_trace, _small_csv, _write)

KW = dict(per_replica=100.0, min_replicas=2, max_replicas=10, target_utilisation=0.8, events_in_replay=1)


def test_a_trace_that_fits_gets_no_note():
    d = np.linspace(300.0, 900.0, 1000)  # 3 .. 9 pods' worth, above the floor (160), under the cap (1000)
    assert fit_notes(d, **KW) == []


def test_demand_above_the_cap_is_named_with_its_share_and_peak():
    d = np.r_[np.full(75, 500.0), np.full(25, 1500.0)]  # a quarter of the time above 10 x 100
    [note] = fit_notes(d, **KW)
    assert "max_replicas serves (10 pods x per_replica 100 = 1000) on 25.0% of the replay" in note
    assert "its peak 1500 needs 15 pods" in note
    assert "`scaling.max_replicas`" in note and "`demand.per_replica`" in note
    # at the cap exactly, every pod full: served, no note
    assert fit_notes(np.r_[np.full(99, 500.0), 1000.0], **KW) == []
    # one step in 10,000 above it is not rounded away to 0%
    [note] = fit_notes(np.r_[np.full(9999, 500.0), 1001.0], **KW)
    assert "on <0.1% of the replay" in note


def test_a_floor_that_serves_most_of_the_replay_is_named():
    # the floor of 2 pods serves 2 x 100 x 0.8 = 160 at the HPA's target
    d = np.r_[np.full(60, 150.0), np.full(40, 600.0)]
    [note] = fit_notes(d, **KW)
    assert note.startswith("a floor of 2 pods (min_replicas 2) serves the demand at the HPA's target "
                           "(0.8 x per_replica 100 a pod) on 60.0% of the replay")
    assert "the median demand, 150, needs 2 pods at that target" in note
    assert "`scaling.min_replicas`" in note
    # under half the time: the floor is part of the comparison, not the whole of it
    assert fit_notes(np.r_[np.full(49, 150.0), np.full(51, 600.0)], **KW) == []
    # min_replicas 0: the HPA still keeps one pod, and the note says which floor it is
    [note] = fit_notes(np.full(10, 20.0), **{**KW, "min_replicas": 0})
    assert note.startswith("a floor of 1 pods (min_replicas 0)")
    assert "the median demand, 20, needs 1 pod at that target" in note
    # no demand needs no pod (the report sweep: "needs 1 pods" for a median of 0)
    [note] = fit_notes(np.full(10, 0.0), **KW)
    assert "the median demand, 0, needs 0 pods at that target" in note


def test_missing_demand_is_left_out_and_no_event_is_named():
    d = np.r_[np.full(10, np.nan), np.full(10, 500.0)]
    assert fit_notes(d, **KW) == []
    [note] = fit_notes(d, **{**KW, "events_in_replay": 0})
    assert note.startswith("no event of the calendar") and "--events" in note
    assert fit_notes(np.full(5, np.nan), **KW) == []


@pytest.mark.parametrize("per_replica, expect", [
    (2000, ()),                       # the unit the test trace was made for (20,000 base, 5x sale)
    (20, ("demand is above what max_replicas serves (300 pods x per_replica 20 = 6000)",)),
    (200_000, ("a floor of 2 pods (min_replicas 2) serves the demand",)),
])
def test_replay_reports_what_the_limits_decided(per_replica, expect):
    tr = _sale_trace(days=3)
    policy = load_policy_text(POLICY.replace("per_replica: 2000", f"per_replica: {per_replica}"))
    r = replay(tr.series, policy, extra_events=list(tr.events), make_model=LastDayPeak,
               start=tr.series.start + timedelta(days=1))
    fits = [n for n in r.notes if n.startswith(("demand is above", "a floor of", "no event"))]
    assert len(fits) == len(expect)
    for n, e in zip(fits, expect):
        assert n.startswith(e)
    assert r.to_dict()["notes"] == list(r.notes)


def test_replay_without_its_event_says_the_war_state_is_the_hpa():
    tr = _sale_trace(days=3)
    r = replay(tr.series, load_policy_text(POLICY), make_model=LastDayPeak,
               start=tr.series.start + timedelta(days=1))
    assert not r.windows and not r.during and not r.war_windows
    assert any(n.startswith("no event of the calendar") for n in r.notes)
    # the same replay with the event declared: no such note
    r2 = replay(tr.series, load_policy_text(POLICY), extra_events=list(tr.events), make_model=LastDayPeak,
                start=tr.series.start + timedelta(days=1))
    assert r2.windows and not any(n.startswith("no event of the calendar") for n in r2.notes)


def test_cli_prints_the_notes_under_the_tables_and_in_the_json(tmp_path, capsys):
    # six hourly points, 2,500 .. 9,000, on pods of 20 (at most 300 = 6,000)
    pol = _write(tmp_path, "p.yaml", POLICY.replace("per_replica: 2000", "per_replica: 20"))
    args = ["replay", "--csv", _small_csv(tmp_path), "--policy", pol]
    assert main([*args, "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert main(args) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert printed == [f"note: {n}" for n in notes]
    assert [n.split(" (")[0] for n in notes[:2]] == ["demand is above what max_replicas serves",
                                                     "no event of the calendar"]
