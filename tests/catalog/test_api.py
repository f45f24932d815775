import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.catalog.models import Dataset
from tests.catalog.factories import PROFILE, add_profiled_version, make_dataset

pytestmark = pytest.mark.django_db


def test_a_scientist_registers_a_dataset_through_the_api(users, api_client):
    api_client.force_login(users["scientist"])
    response = api_client.post(
        "/api/v1/datasets/",
        {"name": "Loans", "description": "All loans", "classification": "confidential", "tags": ["credit"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "loans" and body["owner"] == "scientist" and body["tag_names"] == ["credit"]


def test_bad_input_gets_the_error_shape(users, api_client):
    api_client.force_login(users["scientist"])
    response = api_client.post("/api/v1/datasets/", {"name": "", "classification": "secret"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) >= {"name", "classification"}


def test_a_business_owner_may_not_register_datasets(users, api_client):
    api_client.force_login(users["owner"])
    assert api_client.post("/api/v1/datasets/", {"name": "x"}, format="json").status_code == 403


def test_only_those_who_may_change_can_patch(users, api_client):
    dataset = make_dataset(users["scientist"], "Loans")
    api_client.force_login(users["engineer"])
    assert api_client.patch(f"/api/v1/datasets/{dataset.slug}/", {"description": "x"}, format="json").status_code == 403
    api_client.force_login(users["scientist"])
    response = api_client.patch(f"/api/v1/datasets/{dataset.slug}/", {"description": "Updated"}, format="json")
    assert response.status_code == 200 and Dataset.objects.get(pk=dataset.pk).description == "Updated"


def test_upload_over_the_limit_answers_413_and_writes_nothing(users, api_client, settings):
    settings.CATALOG_MAX_UPLOAD_BYTES = 50
    dataset = make_dataset(users["scientist"], "Loans", profiled=False)
    api_client.force_login(users["scientist"])
    response = api_client.post(
        f"/api/v1/datasets/{dataset.slug}/versions/", {"file": SimpleUploadedFile("a.csv", b"a,b\n" * 100)}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert not dataset.versions.exists()


def test_upload_of_a_wrong_type_answers_400(users, api_client):
    dataset = make_dataset(users["scientist"], "Loans", profiled=False)
    api_client.force_login(users["scientist"])
    response = api_client.post(
        f"/api/v1/datasets/{dataset.slug}/versions/", {"file": SimpleUploadedFile("a.exe", b"MZ...")}
    )
    assert response.status_code == 400 and "unsupported" in str(response.json()["error"]["details"])


def test_versions_and_diff(users, api_client):
    dataset = make_dataset(users["scientist"], "Loans")
    changed = dict(PROFILE, columns=[{"name": "customer_id", "type": "integer"}])
    add_profiled_version(dataset, users["scientist"], changed)
    api_client.force_login(users["engineer"])
    assert [v["number"] for v in api_client.get(f"/api/v1/datasets/{dataset.slug}/versions/").json()] == [2, 1]
    diff = api_client.get(f"/api/v1/datasets/{dataset.slug}/diff/", {"a": 1, "b": 2}).json()
    assert diff["removed"] == [{"name": "email", "type": "string"}]
    assert api_client.get(f"/api/v1/datasets/{dataset.slug}/diff/", {"a": "x", "b": 2}).status_code == 400
    assert api_client.get(f"/api/v1/datasets/{dataset.slug}/diff/", {"a": 1, "b": 9}).status_code == 404


def test_access_request_through_the_api(users, api_client):
    dataset = make_dataset(users["scientist"], "Card holders", classification="pii")
    api_client.force_login(users["engineer"])
    created = api_client.post(
        f"/api/v1/datasets/{dataset.slug}/access-requests/", {"purpose": "Fraud model training"}, format="json"
    )
    assert created.status_code == 201
    request_id = created.json()["id"]
    assert (
        api_client.post(f"/api/v1/access-requests/{request_id}/decide/", {"approve": True}, format="json").status_code
        == 403
    )
    api_client.force_login(users["scientist"])
    inbox = api_client.get("/api/v1/access-requests/", {"inbox": 1}).json()
    assert [r["id"] for r in inbox["results"]] == [request_id]
    decided = api_client.post(f"/api/v1/access-requests/{request_id}/decide/", {"approve": True}, format="json")
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    api_client.force_login(users["engineer"])
    assert api_client.get(f"/api/v1/datasets/{dataset.slug}/sample/").status_code == 200
