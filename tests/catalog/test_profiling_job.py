"""Upload → profiling job on a real worker → profiled version, and a malformed file that fails
cleanly while the dataset keeps its previous good version."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.catalog import services
from apps.catalog.models import DatasetVersion
from apps.jobs.models import Job
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

GOOD_CSV = b"customer_id,region,balance\n1,north,10.5\n2,south,\n3,north,30.25\n4,east,12\n"
RAGGED_CSV = b"customer_id,region,balance\n1,north,10.5\n2,south,3,extra\n"


def finished_job(version):
    def check():
        job = Job.objects.filter(target_id=str(version.pk)).first()
        return job if job and job.is_finished else None

    return check


def test_an_uploaded_csv_is_profiled_on_the_worker(users, celery_worker, client):
    dataset = services.create_dataset(by=users["scientist"], name="Balances", classification="internal")
    client.force_login(users["scientist"])
    response = client.post(
        f"/catalog/datasets/{dataset.slug}/versions/", {"file": SimpleUploadedFile("balances.csv", GOOD_CSV)}
    )
    assert response.status_code == 302
    version = dataset.versions.get()
    job = wait_for(finished_job(version))
    assert job.status == "succeeded", job.error
    version.refresh_from_db()
    dataset.refresh_from_db()
    assert version.status == DatasetVersion.Status.READY and dataset.current_version == version
    assert version.row_count == 4 and len(version.content_hash) == 64 and version.size_bytes == len(GOOD_CSV)
    columns = {c.name: c for c in version.columns.all()}
    assert list(columns) == ["customer_id", "region", "balance"]
    assert columns["balance"].stats["null_count"] == 1
    assert columns["region"].stats["top_values"][0] == {"value": "north", "count": 2}
    page = client.get(f"/catalog/datasets/{dataset.slug}/").content.decode()
    assert 'data-testid="sample-rows"' in page and "north" in page


def test_a_malformed_file_fails_and_the_previous_version_stays_current(users, celery_worker):
    dataset = services.create_dataset(by=users["scientist"], name="Balances")
    first = services.add_version_from_upload(
        dataset=dataset, by=users["scientist"], upload=SimpleUploadedFile("b.csv", GOOD_CSV)
    )
    wait_for(finished_job(first))
    second = services.add_version_from_upload(
        dataset=dataset, by=users["scientist"], upload=SimpleUploadedFile("b.csv", RAGGED_CSV)
    )
    job = wait_for(finished_job(second))
    assert job.status == "failed"
    assert "line" in job.error.lower()
    second.refresh_from_db()
    dataset.refresh_from_db()
    assert second.status == DatasetVersion.Status.FAILED and "line" in second.error.lower()
    assert dataset.current_version_id == first.pk
    assert not second.columns.exists()
