"""The registry's MLflow REST endpoints over raw HTTP: shapes, error codes, search, and the
permission matrix (hidden → RESOURCE_DOES_NOT_EXIST, read-only → PERMISSION_DENIED)."""

import pytest

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.registry import services
from apps.registry.models import ModelAlias, ModelVersion, RegisteredModel
from apps.tracking.errors import InvalidParameter
from tests.conftest import make_user
from tests.registry.conftest import logged_run

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str, fragment: str = ""):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == code
    assert fragment in body["message"]


@pytest.fixture
def people(users):
    """An owner and a teammate (scientists in one team), another scientist, an admin and an
    approver outside the team."""
    team = accounts.create_team(name="Growth", by=users["admin"])
    teammate = make_user("teammate", "Data scientists")
    for member in (users["scientist"], teammate):
        accounts.add_team_member(team=team, user=member, by=users["admin"])
    return {
        "owner": users["scientist"],
        "teammate": teammate,
        "other": make_user("other", "Data scientists"),
        "admin": users["admin"],
        "approver": users["approver"],
    }


@pytest.fixture
def registered(people, artifact_root):
    """A private model 'churn' with one version from a run of the owner's team experiment."""
    owner = people["owner"]
    run = logged_run(owner)
    model = services.create_registered_model(by=owner, name="churn")
    services.create_model_version(by=owner, model=model, source=f"runs:/{run.run_uuid}/model")
    return model


def test_create_get_and_version_shapes_follow_mlflow(people, artifact_root, http):
    api = http(people["owner"])
    run = logged_run(people["owner"])
    created = api.call("POST", "registered-models/create", {"name": "churn", "tags": [{"key": "k", "value": "v"}]})
    assert created.status_code == 200, created.content
    assert created.json()["registered_model"]["name"] == "churn"
    version = api.call(
        "POST", "model-versions/create", {"name": "churn", "source": f"runs:/{run.run_uuid}/model"}
    ).json()["model_version"]
    assert version["version"] == "1" and version["current_stage"] == "None" and version["status"] == "READY"
    assert version["run_id"] == run.run_uuid and version["user_id"] == "scientist"
    model = api.call("GET", "registered-models/get", {"name": "churn"}).json()["registered_model"]
    assert model["tags"] == [{"key": "k", "value": "v"}]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    uri = api.call("GET", "model-versions/get-download-uri", {"name": "churn", "version": "1"}).json()
    assert uri["artifact_uri"] == f"{run.artifact_uri}/model"


def test_source_with_a_missing_artifact_path_is_refused_and_nothing_is_written(registered, people, http):
    run = logged_run(people["owner"], files={"other.txt": "x"})
    response = http(people["owner"]).call(
        "POST", "model-versions/create", {"name": "churn", "source": f"runs:/{run.run_uuid}/model"}
    )
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "no artifacts at 'model'")
    assert ModelVersion.objects.filter(registered_model=registered).count() == 1


def test_foreign_sources_are_refused(registered, people, http):
    for source in ("s3://bucket/model", "file:///etc", "/tmp/model"):
        response = http(people["owner"]).call("POST", "model-versions/create", {"name": "churn", "source": source})
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", "Unsupported model source")


def test_sources_in_hidden_experiments_do_not_exist(registered, people, http):
    hidden_run = logged_run(people["other"])
    response = http(people["owner"]).call(
        "POST", "model-versions/create", {"name": "churn", "source": f"runs:/{hidden_run.run_uuid}/model"}
    )
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    response = http(people["owner"]).call(
        "POST", "model-versions/create", {"name": "churn", "source": f"{hidden_run.artifact_uri}/model"}
    )
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_mlflow_artifacts_source_links_the_run(registered, people, http):
    run = logged_run(people["owner"])
    body = (
        http(people["owner"])
        .call("POST", "model-versions/create", {"name": "churn", "source": f"{run.artifact_uri}/model"})
        .json()
    )
    assert body["model_version"]["run_id"] == run.run_uuid


def test_duplicate_name_in_another_case_is_resource_already_exists(registered, people, http):
    response = http(people["other"]).call("POST", "registered-models/create", {"name": "CHURN"})
    assert_error(response, 400, "RESOURCE_ALREADY_EXISTS")


def test_rename_to_an_existing_name_is_refused(registered, people, http):
    services.create_registered_model(by=people["owner"], name="other-model")
    response = http(people["owner"]).call(
        "POST", "registered-models/rename", {"name": "churn", "new_name": "Other-Model"}
    )
    assert_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    assert RegisteredModel.objects.filter(name="churn").exists()


def test_invalid_names_aliases_and_stages_are_invalid_parameter_value(registered, people, http):
    api = http(people["owner"])
    assert_error(api.call("POST", "registered-models/create", {"name": "a/b"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.call("POST", "registered-models/create", {}), 400, "INVALID_PARAMETER_VALUE")
    for alias in ("latest", "v1", "bad alias"):
        response = api.call("POST", "registered-models/alias", {"name": "churn", "alias": alias, "version": "1"})
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = api.call("POST", "model-versions/transition-stage", {"name": "churn", "version": "1", "stage": "Live"})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage")
    assert_error(
        api.call("GET", "model-versions/get", {"name": "churn", "version": "x"}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_unknown_versions_and_aliases_do_not_exist(registered, people, http):
    api = http(people["owner"])
    assert_error(
        api.call("GET", "model-versions/get", {"name": "churn", "version": "9"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert_error(
        api.call("GET", "registered-models/alias", {"name": "churn", "alias": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_service_refuses_an_alias_on_another_models_version(registered, people, artifact_root):
    owner = people["owner"]
    other = services.create_registered_model(by=owner, name="other-model")
    run = logged_run(owner)
    foreign = services.create_model_version(by=owner, model=other, source=f"runs:/{run.run_uuid}/model")
    with pytest.raises(InvalidParameter, match="own model"):
        services.set_alias(by=owner, model=registered, alias="champion", version=foreign)
    assert not ModelAlias.objects.exists()


def test_deleting_a_version_hides_it_drops_its_aliases_and_never_reuses_its_number(registered, people, http):
    api = http(people["owner"])
    api.call("POST", "registered-models/alias", {"name": "churn", "alias": "champion", "version": "1"})
    assert api.call("DELETE", "model-versions/delete", {"name": "churn", "version": "1"}).status_code == 200
    assert_error(
        api.call("GET", "model-versions/get", {"name": "churn", "version": "1"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert not ModelAlias.objects.exists()
    run = logged_run(people["owner"])
    created = api.call("POST", "model-versions/create", {"name": "churn", "source": f"runs:/{run.run_uuid}/model"})
    assert created.json()["model_version"]["version"] == "2"


def test_archive_existing_versions_moves_the_others_to_archived(registered, people, http):
    api = http(people["owner"])
    run = logged_run(people["owner"])
    api.call("POST", "model-versions/create", {"name": "churn", "source": f"runs:/{run.run_uuid}/model"})
    api.call("POST", "model-versions/transition-stage", {"name": "churn", "version": "1", "stage": "Production"})
    body = api.call(
        "POST",
        "model-versions/transition-stage",
        {"name": "churn", "version": "2", "stage": "production", "archive_existing_versions": True},
    ).json()
    assert body["model_version"]["current_stage"] == "Production"
    assert ModelVersion.objects.get(version=1).current_stage == "Archived"


def test_search_models_filters_orders_and_pages(people, artifact_root, http):
    api = http(people["owner"])
    for name in ("alpha", "beta", "gamma", "alphabet"):
        api.call("POST", "registered-models/create", {"name": name})
    api.call("POST", "registered-models/set-tag", {"name": "beta", "key": "team", "value": "risk"})
    names = lambda body: [m["name"] for m in body["registered_models"]]  # noqa: E731
    assert names(api.call("GET", "registered-models/search", {"filter": "name LIKE '%alpha%'"}).json()) == [
        "alpha",
        "alphabet",
    ]
    assert names(api.call("GET", "registered-models/search", {"filter": "name = 'gamma'"}).json()) == ["gamma"]
    assert names(api.call("GET", "registered-models/search", {"filter": "tags.team = 'risk'"}).json()) == ["beta"]
    first = api.call("GET", "registered-models/search", {"max_results": 2, "order_by": ["name DESC"]}).json()
    assert names(first) == ["gamma", "beta"] and first["next_page_token"]
    second = api.call(
        "GET",
        "registered-models/search",
        {"max_results": 2, "order_by": ["name DESC"], "page_token": first["next_page_token"]},
    ).json()
    assert names(second) == ["alphabet", "alpha"] and "next_page_token" not in second
    bad = api.call("GET", "registered-models/search", {"filter": "owner = 'x'"})
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE")
    bad = api.call("GET", "registered-models/search", {"max_results": 5000})
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE")


def test_search_versions_by_run_source_and_tag(registered, people, http):
    api = http(people["owner"])
    version = ModelVersion.objects.get(registered_model=registered)
    api.call("POST", "model-versions/set-tag", {"name": "churn", "version": "1", "key": "validated", "value": "yes"})
    for flt in (
        f"run_id = '{version.run.run_uuid}'",
        "source_path LIKE 'runs:/%'",
        "tags.validated = 'yes'",
        "name='churn'",
    ):
        body = api.call("GET", "model-versions/search", {"filter": flt}).json()
        assert [v["version"] for v in body["model_versions"]] == ["1"], flt
    body = api.call("GET", "model-versions/search", {"filter": "version_number > 1"}).json()
    assert body["model_versions"] == []


# --- Permission matrix ------------------------------------------------------------------------

READS = [
    ("GET", "registered-models/get", {"name": "churn"}),
    ("GET", "model-versions/get", {"name": "churn", "version": "1"}),
    ("GET", "model-versions/get-download-uri", {"name": "churn", "version": "1"}),
    ("POST", "registered-models/get-latest-versions", {"name": "churn"}),
    ("GET", "registered-models/alias", {"name": "churn", "alias": "champion"}),
]
WRITES = [
    ("POST", "registered-models/set-tag", {"name": "churn", "key": "k", "value": "v"}),
    ("PATCH", "registered-models/update", {"name": "churn", "description": "new"}),
    ("PATCH", "model-versions/update", {"name": "churn", "version": "1", "description": "new"}),
    ("POST", "model-versions/set-tag", {"name": "churn", "version": "1", "key": "k", "value": "v"}),
    ("POST", "model-versions/transition-stage", {"name": "churn", "version": "1", "stage": "Staging"}),
    ("POST", "registered-models/alias", {"name": "churn", "alias": "challenger", "version": "1"}),
    ("DELETE", "registered-models/alias", {"name": "churn", "alias": "champion"}),
]
MANAGE = [
    ("DELETE", "model-versions/delete", {"name": "churn", "version": "1"}),
    ("POST", "registered-models/rename", {"name": "churn", "new_name": "churn-renamed"}),
]
# Who gets what on a private model: 200, 403 (sees it, may not) or 404 (does not see it).
PRIVATE = {
    "owner": (200, 200, 200),
    "teammate": (200, 200, 403),
    "other": (404, 404, 404),
    "admin": (200, 200, 200),
    "approver": (404, 404, 404),
}
ORGANISATION = {
    "owner": (200, 200, 200),
    "teammate": (200, 200, 403),
    "other": (200, 403, 403),
    "admin": (200, 200, 200),
    "approver": (200, 403, 403),
}


def _expect(response, status: int):
    assert response.status_code == status, response.content
    if status == 404:
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    if status == 403:
        assert response.json()["error_code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("visibility", ["private", "organisation"])
@pytest.mark.parametrize("who", ["owner", "teammate", "other", "admin", "approver"])
def test_permission_matrix(registered, people, http, who, visibility):
    RegisteredModel.objects.filter(pk=registered.pk).update(visibility=visibility)
    services.set_alias(
        by=people["owner"], model=registered, alias="champion", version=ModelVersion.objects.get(version=1)
    )
    read, write, manage = (PRIVATE if visibility == "private" else ORGANISATION)[who]
    api = http(people[who])
    for method, endpoint, body in READS:
        _expect(api.call(method, endpoint, body), read)
    listed = api.call("GET", "registered-models/search", {}).json().get("registered_models", [])
    assert [m["name"] for m in listed] == (["churn"] if read == 200 else [])
    versions = api.call("GET", "model-versions/search", {"filter": "name='churn'"}).json().get("model_versions", [])
    assert len(versions) == (1 if read == 200 else 0)
    for method, endpoint, body in WRITES:
        _expect(api.call(method, endpoint, body), write)
    for method, endpoint, body in MANAGE:
        _expect(api.call(method, endpoint, body), manage)


def test_hidden_model_delete_is_not_found_and_changes_nothing(registered, people, http):
    response = http(people["other"]).call("DELETE", "registered-models/delete", {"name": "churn"})
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert RegisteredModel.objects.filter(pk=registered.pk).exists()


def test_roles_without_registry_permissions_cannot_create_models(people, http):
    response = http(people["approver"]).call("POST", "registered-models/create", {"name": "mine"})
    assert_error(response, 403, "PERMISSION_DENIED")


def test_model_creation_and_deletion_are_audited(registered, people, http):
    http(people["owner"]).call("DELETE", "registered-models/delete", {"name": "churn"})
    actions = list(
        AuditEvent.objects.filter(object_type="registry.registeredmodel")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == ["registry.model.created", "registry.model.deleted"]
