"""Django admin of merge jobs: listed, filtered and searched in a fixed number of queries,
each job shown with its checks and log; nothing can be added, changed or deleted there."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dbmerge.choices import CheckName, JobState
from dbmerge.models import MergeCheck, MergeJob, MergeLogEntry
from tests.dbmerge.test_pages import external

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs():
    one, two, merged, other = (external(name) for name in ("tcnode1", "tcnode2", "tcmerged", "tcother"))
    made = [
        MergeJob.objects.create(
            db_type="postgres",
            source_1=one,
            source_2=two,
            target=other if i == 0 else merged,
            database_name=(other if i == 0 else merged).database_name,
            state=JobState.FAILED if i == 0 else JobState.VALIDATED,
            reason="The worker running this job stopped (no heartbeat for 60 s)." if i == 0 else "",
        )
        for i in range(8)
    ]
    MergeCheck.objects.create(
        job=made[0],
        position=0,
        name=CheckName.TC_STOPPED,
        subject="imp-1a",
        passed=False,
        message="Cisco XCP Text Conference Manager is running on imp-1a.",
    )
    MergeLogEntry.objects.create(job=made[0], level="ERROR", message="Validation failed.")
    return made


def changelist_ids(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/admin/dbmerge/mergejob/(\d+)/change/', page)]


def test_admin_lists_filters_and_searches_jobs_in_a_fixed_number_of_queries(
    admin_client, jobs, django_assert_max_num_queries
):
    url = reverse("admin:dbmerge_mergejob_changelist")
    with django_assert_max_num_queries(8):
        page = admin_client.get(url).content.decode()
    assert sorted(changelist_ids(page)) == sorted(job.pk for job in jobs)
    for title in ("By state", "By Database Type", "By kind"):
        assert title in page
    failed = admin_client.get(url, {"state__exact": "failed"}).content.decode()
    assert changelist_ids(failed) == [jobs[0].pk]
    found = admin_client.get(url, {"q": "tcother"}).content.decode()
    assert changelist_ids(found) == [jobs[0].pk]
    assert changelist_ids(admin_client.get(url, {"q": str(jobs[3].pk)}).content.decode()) == [jobs[3].pk]
    assert "Add merge job" not in page


def test_admin_shows_a_job_with_its_checks_and_log_and_changes_nothing(admin_client, jobs):
    job = jobs[0]
    url = reverse("admin:dbmerge_mergejob_change", args=[job.pk])
    page = admin_client.get(url).content.decode()
    assert "Cisco XCP Text Conference Manager is running on imp-1a." in page
    assert "Validation failed." in page
    assert "The worker running this job stopped" in page
    assert 'name="_save"' not in page and 'name="state"' not in page

    response = admin_client.post(url, {"state": JobState.COMPLETED, "reason": ""})
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.FAILED

    assert admin_client.get(reverse("admin:dbmerge_mergejob_add")).status_code == 403
    delete = admin_client.post(reverse("admin:dbmerge_mergejob_delete", args=[job.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert MergeJob.objects.filter(pk=job.pk).exists()
    assert admin_client.get(reverse("admin:dbmerge_mergelogentry_changelist")).status_code == 200
