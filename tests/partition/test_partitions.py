"""Network partitions on the namespace test bed (``tests/partition/netns.py``) with Andy (home
A) and Bob (home B) posting throughout to a room hosted on A: no acknowledged message lost or
doubled, never two nodes accepting posts for the room (from the hosting epoch each message was
committed under), the group page showing what happened, and the time from the cut to service
on the backup printed. The cases themselves are in ``tests/partition/cases.py``, shared with
``bench/partition.py``."""

from __future__ import annotations

import pytest

from tests.partition import cases
from topology.choices import HAReason, HAState

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def check(run: cases.CaseRun) -> None:
    print(run.outcome.line(run.case.name))
    assert run.outcome.lost == [], "acknowledged messages lost"
    assert run.outcome.doubled == [], "messages stored twice"
    assert run.outcome.split_brain == [], "two nodes accepted posts for the room"
    assert run.page_matches, f"group page does not show {run.final_states}"


def test_a_node_cut_from_the_config_db_only_fences_itself_before_its_peer_takes_over_then_falls_back(group_on_bed):
    run = cases.run_case(group_on_bed, cases.CASES["config-db"])
    check(run)
    a, b = group_on_bed.nodes["a"].name, group_on_bed.nodes["b"].name
    # A stopped serving (its lease ran out) before B could take over, though A still reached
    # the external database and its clients; B took over only after the heartbeat timeout.
    assert run.fenced_after is not None and run.fenced_after < group_on_bed.params.heartbeat_timeout
    assert run.outcome.backup_after >= group_on_bed.params.heartbeat_timeout
    # Back in touch, A went through the SRM's states and served again only after Fallback.
    assert run.states_seen[a][:2] == [
        (HAState.FAILED_OVER_CRITICAL_SERVICES_NOT_RUNNING, HAReason.PEER_DOWN),
        (HAState.FAILED_OVER, HAReason.PEER_DOWN),
    ]
    assert run.states_seen[b][:2] == [
        (HAState.TAKING_OVER, HAReason.PEER_DOWN),
        (HAState.RUNNING_IN_BACKUP_MODE, HAReason.PEER_DOWN),
    ]
    assert run.fell_back and run.final_states == {a: HAState.NORMAL, b: HAState.NORMAL}
    assert run.acks_after_fallback >= 5


def test_a_node_cut_from_everything_is_taken_over_after_the_heartbeat_timeout(group_on_bed):
    run = cases.run_case(group_on_bed, cases.CASES["everything"], fall_back=False)
    check(run)
    a, b = group_on_bed.nodes["a"].name, group_on_bed.nodes["b"].name
    assert run.outcome.backup_after >= group_on_bed.params.heartbeat_timeout
    assert run.final_states == {a: HAState.FAILED_OVER, b: HAState.RUNNING_IN_BACKUP_MODE}


def test_a_node_cut_from_the_redis_bus_only_keeps_its_room_and_nobody_takes_it_over(group_on_bed):
    run = cases.run_case(group_on_bed, cases.CASES["redis"])
    check(run)
    a, b = group_on_bed.nodes["a"].name, group_on_bed.nodes["b"].name
    # A still renews its lease and serves its room (Andy keeps posting on A); Bob's posts,
    # routed over the bus, wait for the heal. No failover: both stay Normal.
    assert run.outcome.backup_after is None and run.acks_during_cut["andy"] > 0
    assert run.states_seen == {a: [], b: []} and run.final_states == {a: HAState.NORMAL, b: HAState.NORMAL}


def test_a_flapping_link_loses_nothing_and_never_splits_the_room(group_on_bed):
    run = cases.run_case(group_on_bed, cases.CASES["flapping"])
    check(run)


def test_loss_and_delay_to_the_config_db_lose_nothing_and_never_split_the_room(group_on_bed):
    run = cases.run_case(group_on_bed, cases.CASES["lossy"])
    check(run)
