import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.audit.models import AuditEvent
from apps.catalog import selectors, services
from apps.catalog.models import AccessRequest, DatasetVersion
from apps.jobs.models import Job
from tests.catalog.factories import PROFILE, add_profiled_version, make_dataset

pytestmark = pytest.mark.django_db


def test_registering_needs_the_role(users):
    with pytest.raises(PermissionDenied):
        services.create_dataset(by=users["owner"], name="x")
    dataset = services.create_dataset(by=users["scientist"], name="Loans 2024", tags=["Credit", "monthly"])
    assert dataset.slug == "loans-2024"
    assert sorted(dataset.tags.values_list("name", flat=True)) == ["credit", "monthly"]
    assert AuditEvent.objects.filter(action="dataset.create", object_id=str(dataset.pk)).exists()


def test_slugs_stay_unique(users):
    first = services.create_dataset(by=users["scientist"], name="Loans")
    second = services.create_dataset(by=users["scientist"], name="Loans")
    assert (first.slug, second.slug) == ("loans", "loans-2")


def test_documentation_links_must_be_http(users):
    with pytest.raises(ValidationError):
        services.create_dataset(by=users["scientist"], name="x", documentation_links=["javascript:alert(1)"])


def test_an_upload_creates_a_pending_version_and_a_profiling_job(users, django_capture_on_commit_callbacks):
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    upload = SimpleUploadedFile("loans.csv", b"a,b\n1,2\n", content_type="text/csv")
    with django_capture_on_commit_callbacks() as callbacks:
        version = services.add_version_from_upload(dataset=dataset, by=users["scientist"], upload=upload)
    assert version.status == DatasetVersion.Status.PENDING and version.number == 1
    assert version.file.name.endswith(".csv") and "loans.csv" not in version.file.name
    job = Job.objects.get(kind="catalog.profile_version")
    assert job.params == {"version_id": version.pk} and len(callbacks) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("empty.csv", b"", "empty"), ("report.exe", b"MZ", "unsupported"), ("notes.txt", b"hello", "unsupported")],
)
def test_bad_uploads_are_refused_and_write_nothing(users, name, content, message):
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    with pytest.raises(ValidationError, match=message):
        services.add_version_from_upload(
            dataset=dataset, by=users["scientist"], upload=SimpleUploadedFile(name, content)
        )
    assert not dataset.versions.exists() and not Job.objects.exists()


def test_an_upload_over_the_limit_is_refused(users, settings):
    settings.CATALOG_MAX_UPLOAD_BYTES = 10
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    with pytest.raises(services.UploadTooLarge):
        services.add_version_from_upload(
            dataset=dataset, by=users["scientist"], upload=SimpleUploadedFile("a.csv", b"x" * 11)
        )


def test_the_web_form_answers_413_for_a_declared_oversize_body(users, client, settings):
    settings.CATALOG_MAX_UPLOAD_BYTES = 100
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    client.force_login(users["scientist"])
    response = client.post(
        f"/catalog/datasets/{dataset.slug}/versions/", {"file": SimpleUploadedFile("a.csv", b"x" * 500)}
    )
    assert response.status_code == 413
    assert not dataset.versions.exists()


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "sub/../../secret.csv", "", "missing.csv"])
def test_server_paths_outside_the_data_root_are_rejected(users, settings, tmp_path, path):
    settings.CATALOG_DATA_ROOT = tmp_path / "root"
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n")
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    with pytest.raises(ValidationError):
        services.add_version_from_path(dataset=dataset, by=users["scientist"], path=path)
    assert not dataset.versions.exists()


def test_a_symlink_leading_out_of_the_root_is_rejected(users, settings, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n")
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    settings.CATALOG_DATA_ROOT = root
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    with pytest.raises(ValidationError, match="under the data root"):
        services.add_version_from_path(dataset=dataset, by=users["scientist"], path="link.csv")


def test_a_server_path_under_the_root_is_accepted(users, settings, tmp_path):
    settings.CATALOG_DATA_ROOT = tmp_path
    (tmp_path / "loans.csv").write_text("a\n1\n")
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    version = services.add_version_from_path(dataset=dataset, by=users["scientist"], path="loans.csv")
    assert version.source_uri == str(tmp_path / "loans.csv")


def test_only_those_who_may_change_add_versions(users):
    dataset = services.create_dataset(by=users["scientist"], name="Loans")
    with pytest.raises(PermissionDenied):
        services.add_version_from_upload(
            dataset=dataset, by=users["engineer"], upload=SimpleUploadedFile("a.csv", b"a\n1\n")
        )


def test_a_failed_version_leaves_the_previous_good_one_current(users):
    dataset = make_dataset(users["scientist"], "Loans")
    good = dataset.current_version
    broken = DatasetVersion.objects.create(dataset=dataset, number=2, format="csv")
    services.mark_profile_failed(version=broken, error="line 3: expected 2 columns, found 3")
    dataset.refresh_from_db()
    broken.refresh_from_db()
    assert dataset.current_version == good
    assert broken.status == "failed" and "line 3" in broken.error


def test_descriptions_and_pii_flags_carry_over_to_the_next_version(users):
    dataset = make_dataset(users["scientist"], "Loans")
    email = dataset.current_version.columns.get(name="email")
    services.set_column_metadata(column=email, by=users["scientist"], description="Contact address", is_pii=True)
    second = add_profiled_version(dataset, users["scientist"])
    carried = second.columns.get(name="email")
    assert (carried.description, carried.is_pii) == ("Contact address", True)


def test_schema_diff_lists_added_removed_and_retyped_columns(users):
    dataset = make_dataset(users["scientist"], "Loans")
    changed = dict(PROFILE)
    changed["columns"] = [
        {"name": "customer_id", "type": "string"},
        {"name": "signup_date", "type": "date"},
    ]
    new = add_profiled_version(dataset, users["scientist"], changed)
    old = dataset.versions.get(number=1)
    assert selectors.schema_diff(old, new) == {
        "added": [{"name": "signup_date", "type": "date"}],
        "removed": [{"name": "email", "type": "string"}],
        "type_changed": [{"name": "customer_id", "from": "integer", "to": "string"}],
    }


def test_access_request_lifecycle_is_audited(users):
    dataset = make_dataset(users["scientist"], "Card holders", classification="pii")
    with pytest.raises(ValidationError):
        services.request_access(dataset=dataset, by=users["engineer"], purpose="short")
    request = services.request_access(
        dataset=dataset, by=users["engineer"], purpose="Fraud model training", duration_days=30
    )
    with pytest.raises(ValidationError, match="pending"):
        services.request_access(dataset=dataset, by=users["engineer"], purpose="Fraud model training again")
    with pytest.raises(PermissionDenied):
        services.decide_access_request(access_request=request, by=users["engineer"], approve=True)
    with pytest.raises(PermissionDenied):
        services.decide_access_request(access_request=request, by=users["approver"], approve=True)
    decided = services.decide_access_request(
        access_request=request, by=users["scientist"], approve=True, comment="fine"
    )
    assert decided.status == AccessRequest.Status.APPROVED and decided.is_active
    assert (decided.expires_at - decided.decided_at).days == 30
    services.revoke_access(access_request=decided, by=users["scientist"])
    actions = list(
        AuditEvent.objects.filter(object_id=str(dataset.pk), action__startswith="access.")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == ["access.request", "access.approve", "access.revoke"]


def test_an_expired_grant_no_longer_opens_the_content(users):
    from datetime import timedelta

    from django.utils import timezone

    from apps.catalog import permissions

    dataset = make_dataset(users["scientist"], "Card holders", classification="pii")
    request = services.request_access(dataset=dataset, by=users["engineer"], purpose="Fraud model training")
    services.decide_access_request(access_request=request, by=users["scientist"], approve=True)
    assert permissions.can_see_content(users["engineer"], dataset)
    AccessRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not permissions.can_see_content(users["engineer"], dataset)


def test_access_inbox_page_lets_the_owner_decide(users, client):
    dataset = make_dataset(users["scientist"], "Card holders", classification="pii")
    request = services.request_access(dataset=dataset, by=users["engineer"], purpose="Fraud model training")
    client.force_login(users["scientist"])
    assert len(client.get("/catalog/access/").context["inbox"]) == 1
    client.post(f"/catalog/access/{request.pk}/decide/", {"decision": "reject", "comment": "no"})
    request.refresh_from_db()
    assert request.status == "rejected" and request.decided_by == users["scientist"]


def test_owner_flags_a_column_as_pii_from_the_page_and_others_cannot(users, client):
    dataset = make_dataset(users["scientist"], "Customers")
    email = dataset.current_version.columns.get(name="email")
    url = f"/catalog/datasets/{dataset.slug}/columns/{email.pk}/"
    client.force_login(users["engineer"])
    assert client.post(url, {"description": "x", "is_pii": "on"}).status_code == 403
    client.force_login(users["scientist"])
    assert client.post(url, {"description": "Contact address", "is_pii": "on"}).status_code == 302
    email.refresh_from_db()
    assert (email.description, email.is_pii) == ("Contact address", True)
    assert AuditEvent.objects.filter(action="dataset.column.update", object_id=str(dataset.pk)).exists()
