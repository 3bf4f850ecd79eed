"""``manage.py load_bench_data``: the console benchmark's data set, and the query counts of the
pages the benchmark walks, at a small and at a larger size of that data set."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from dbmerge.models import MergeJob
from imp_admin.roles import SUPER_ADMINISTRATOR
from messaging.models import ExternalDatabase
from topology.models import EndUser, Node, RedundancyGroup, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def bench_data(postgres):
    """Load the data set at a given size; its chat databases are dropped after the test."""
    prefix = f"imp_test_bench_{uuid.uuid4().hex[:6]}_"

    def load(**sizes) -> str:
        options = {"users": 30, "rooms": 40, "merge_jobs": 12, "audit_entries": 120, "admins": 2, **sizes}
        out = StringIO()
        call_command(
            "load_bench_data", admin_password="bench-Password-1", database_prefix=prefix, stdout=out, **options
        )
        return out.getvalue()

    yield load
    postgres.databases += [f"{prefix}subcluster{n}" for n in (1, 2, 3)]


def test_it_builds_the_data_set_the_benchmark_walks(bench_data, postgres):
    output = bench_data()
    assert "Benchmark data loaded" in output
    assert RedundancyGroup.objects.filter(ha_enabled=True).count() == 3
    assert Node.objects.count() == 6
    assert Service.objects.count() == 6 * 3
    assert EndUser.objects.count() == 30
    assert MergeJob.objects.count() == 12
    assert LogEntry.objects.filter(actor__username__startswith="bench-admin-").count() == 120
    admins = User.objects.filter(username__startswith="bench-admin-")
    assert admins.count() == 2
    assert all(a.groups.filter(name=SUPER_ADMINISTRATOR).exists() for a in admins)
    assert admins[0].check_password("bench-Password-1")
    rooms = 0
    for database in ExternalDatabase.objects.all():
        with postgres.connect(database.database_name) as conn:
            rooms += conn.execute("SELECT count(*) FROM tc_rooms WHERE type = 'persistent'").fetchone()[0]
    assert rooms == 40


def test_it_refuses_a_config_db_that_holds_a_topology(bench_data, build):
    build.cluster()
    with pytest.raises(CommandError, match="already holds a topology"):
        bench_data()


# The pages bench/console_load.py walks that other tests do not pin already.
PAGES = [
    "/messaging/jobs/",
    "/messaging/external-databases/",
    "/system/alarm-recipients/",
    "/serviceability/control-center/feature/",
    "/serviceability/control-center/network/",
    "/serviceability/service-activation/",
    "/system/service-parameters/",
    "/messaging/group-chat/",
    "/messaging/group-chat/aliases/",
    "/messaging/rooms/",
    "/audit/?page=3",
    "/system/users/?page=2",
]


@pytest.mark.parametrize("scale", [1, 10])
def test_walked_pages_keep_their_query_count_as_rows_grow(
    bench_data, super_client, django_assert_max_num_queries, scale
):
    bench_data(users=100 * scale, rooms=30 * scale, merge_jobs=60 * scale, audit_entries=200 * scale)
    for url in PAGES:
        with django_assert_max_num_queries(20):
            response = super_client.get(url)
        assert response.status_code == 200, url
    job = MergeJob.objects.order_by("pk").last()
    with django_assert_max_num_queries(12):
        assert super_client.get(f"/messaging/jobs/merge/{job.pk}/").status_code == 200
