"""Fixtures of the partition suite: one namespace test bed per session, one redundancy group
(config DB, chat database, agents, clients) per test. Everything is removed after, also when
a test fails; stale namespaces of dead test runs are swept when the bed starts."""

from __future__ import annotations

import shutil

import pytest

from tests.partition.netns import TestBed, available, new_workdir
from tests.partition.world import GroupOnBed, migrate_template, use_config_db


@pytest.fixture(scope="session")
def bed():
    reason = available()
    if reason:
        pytest.skip(f"The namespace test bed cannot run here: {reason}.")
    workdir = new_workdir()
    testbed = TestBed(workdir)
    try:
        testbed.start()
        migrate_template(testbed)
        yield testbed
    finally:
        testbed.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def group_on_bed(bed, django_db_blocker, tmp_path):
    """A redundancy group on the bed; the test's ORM calls go to its config DB."""
    group = GroupOnBed(bed, tmp_path)
    try:
        with django_db_blocker.unblock(), use_config_db(bed, group.config_db):
            group.build()
            yield group
    finally:
        for host in ("a", "b"):
            bed.heal(host)
        for name, agent in group.agents.items():
            if "Traceback" in agent.log():
                print(f"--- log of agent {name} ---\n{agent.log()[-6000:]}")
        group.close()
