import pytest

from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(users):
    return {
        "mine": Job.objects.create(kind="tests.count_to", requested_by=users["scientist"]),
        "theirs": Job.objects.create(kind="tests.count_to", requested_by=users["engineer"], status=Job.Status.FAILED),
    }


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("scientist", {"mine"}),
        ("engineer", {"theirs"}),
        ("ops", {"mine", "theirs"}),
        ("admin", {"mine", "theirs"}),
        ("owner", set()),
    ],
)
def test_job_list_shows_what_the_user_may_see(users, client, api_client, jobs, role, visible):
    expected = {str(jobs[name].pk) for name in visible}
    client.force_login(users[role])
    page = client.get("/jobs/").context["page"]
    assert {str(job.pk) for job in page} == expected
    api_client.force_login(users[role])
    assert {row["id"] for row in api_client.get("/api/v1/jobs/").json()["results"]} == expected


@pytest.mark.parametrize(
    ("role", "view_status", "retry_status"),
    [("engineer", 200, 403), ("ops", 200, 200), ("scientist", 404, 404), ("nobody", 404, 404)],
)
def test_someone_elses_job_answers_404(users, client, api_client, jobs, role, view_status, retry_status):
    job = jobs["theirs"]
    client.force_login(users[role])
    assert client.get(f"/jobs/{job.pk}/").status_code == view_status
    assert client.post(f"/jobs/{job.pk}/retry/").status_code == (404 if view_status == 404 else 302)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)  # the page may have retried it
    api_client.force_login(users[role])
    assert api_client.get(f"/api/v1/jobs/{job.pk}/").status_code == view_status
    assert api_client.post(f"/api/v1/jobs/{job.pk}/retry/").status_code == retry_status


def test_ops_retry_from_the_page(users, client, jobs, django_capture_on_commit_callbacks):
    client.force_login(users["ops"])
    with django_capture_on_commit_callbacks():
        response = client.post(f"/jobs/{jobs['theirs'].pk}/retry/")
    assert response.status_code == 302
    jobs["theirs"].refresh_from_db()
    assert jobs["theirs"].status == Job.Status.QUEUED


def test_job_page_polls_while_running_and_stops_when_done(users, client, jobs):
    client.force_login(users["scientist"])
    running = client.get(f"/jobs/{jobs['mine'].pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in running
    Job.objects.filter(pk=jobs["mine"].pk).update(status=Job.Status.SUCCEEDED, progress=100)
    done = client.get(f"/jobs/{jobs['mine'].pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "every 2s" not in done and "succeeded" in done
