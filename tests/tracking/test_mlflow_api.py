"""The MLflow REST API over raw HTTP: MLflow's error codes for bad input, nothing half-written,
permissions, and a lean request path (query counts)."""

import json

import pytest
from django.test import Client

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.tracking import services
from apps.tracking.models import Experiment, LatestMetric, Metric, Param, Run, RunTag

pytestmark = pytest.mark.django_db
API = "/api/2.0/mlflow"


class MlflowHttp:
    def __init__(self, user=None):
        self.client = Client()
        self.headers = {}
        if user is not None:
            _, secret = accounts.create_token(user=user, name="test")
            self.headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def post(self, endpoint: str, body, *, raw: bool = False):
        data = body if raw else json.dumps(body)
        return self.client.post(f"{API}/{endpoint}", data=data, content_type="application/json", **self.headers)

    def get(self, endpoint: str, **params):
        return self.client.get(f"{API}/{endpoint}", params, **self.headers)


@pytest.fixture
def owner_api(users):
    return MlflowHttp(users["scientist"])


@pytest.fixture
def run(users):
    experiment = services.create_experiment(by=users["scientist"], name="exp")
    return services.create_run(by=users["scientist"], experiment=experiment)


def assert_error(response, status: int, code: str, fragment: str = ""):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == code
    assert fragment in body["message"]


def metric(key="m", value=1.0, step=0):
    return {"key": key, "value": value, "timestamp": 1700000000000, "step": step}


def test_anonymous_requests_are_refused_with_401():
    response = Client().get(f"{API}/experiments/get", {"experiment_id": "1"})
    assert_error(response, 401, "UNAUTHENTICATED")


def test_a_bad_token_is_refused_with_401():
    response = Client().get(f"{API}/experiments/get", {"experiment_id": "1"}, HTTP_AUTHORIZATION="Bearer cw_nope")
    assert_error(response, 401, "UNAUTHENTICATED")


def test_unknown_endpoint_is_endpoint_not_found(owner_api):
    assert_error(owner_api.get("runs/nothing-here"), 404, "ENDPOINT_NOT_FOUND")


def test_malformed_json_is_invalid_parameter(owner_api, run):
    response = owner_api.post("runs/log-batch", '{"run_id": ', raw=True)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "not valid JSON")
    response = owner_api.post("runs/log-batch", "[1, 2]", raw=True)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "JSON object")


def test_nan_and_infinity_are_stored_and_returned_as_protobuf_json(owner_api, run):
    body = {"run_id": run.run_uuid, "metrics": [metric("a", "NaN"), metric("b", "Infinity"), metric("c", "-Infinity")]}
    assert owner_api.post("runs/log-batch", body).status_code == 200
    data = owner_api.get("runs/get", run_id=run.run_uuid).json()["run"]["data"]
    values = {item["key"]: item["value"] for item in data["metrics"]}
    assert values == {"a": "NaN", "b": "Infinity", "c": "-Infinity"}


def test_int64_fields_are_accepted_as_strings(owner_api, run):
    body = {"run_id": run.run_uuid, "key": "loss", "value": 0.5, "timestamp": "1700000000000", "step": "3"}
    assert owner_api.post("runs/log-metric", body).status_code == 200
    point = Metric.objects.get(run=run, key="loss")
    assert (point.timestamp, point.step) == (1700000000000, 3)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"metrics": [metric(step=i) for i in range(1001)]}, "at most 1000 metrics"),
        ({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "at most 100 params"),
        ({"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}, "at most 100 tags"),
        ({"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]}, "Duplicate parameter keys"),
        ({"params": [{"key": "k" * 251, "value": "1"}]}, "exceeds length limit of 250"),
        ({"params": [{"key": "p", "value": "v" * 6001}]}, "exceeds length limit of 6000"),
        ({"tags": [{"key": "t", "value": "v" * 8001}]}, "exceeds length limit of 8000"),
        ({"metrics": [metric(key="../escape")]}, "must not resolve to other names"),
        ({"metrics": [metric(value="high")]}, "valid double"),
        ({"metrics": [{"key": "m", "value": 1.0, "timestamp": -1}]}, "at least 0"),
        ({"metrics": [metric("ok"), metric(key="bad key!")]}, "Names may only contain"),
    ],
)
def test_a_rejected_batch_writes_nothing(owner_api, run, body, fragment):
    response = owner_api.post("runs/log-batch", {"run_id": run.run_uuid, **body})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", fragment)
    assert not Metric.objects.filter(run=run).exists()
    assert not LatestMetric.objects.filter(run=run).exists()
    assert not Param.objects.filter(run=run).exists()
    assert set(RunTag.objects.filter(run=run).values_list("key", flat=True)) == {"mlflow.runName", "mlflow.user"}


def test_changing_a_param_is_refused_and_the_batch_is_not_written(owner_api, run):
    owner_api.post("runs/log-parameter", {"run_id": run.run_uuid, "key": "alpha", "value": "1"})
    body = {"run_id": run.run_uuid, "metrics": [metric()], "params": [{"key": "alpha", "value": "2"}]}
    assert_error(owner_api.post("runs/log-batch", body), 400, "INVALID_PARAMETER_VALUE", "Changing param values")
    assert not Metric.objects.filter(run=run).exists()
    assert Param.objects.get(run=run, key="alpha").value == "1"
    same_again = {"run_id": run.run_uuid, "params": [{"key": "alpha", "value": "1"}]}
    assert owner_api.post("runs/log-batch", same_again).status_code == 200


def test_unknown_run_is_resource_does_not_exist(owner_api):
    assert_error(owner_api.get("runs/get", run_id="f" * 32), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(owner_api.post("runs/log-metric", {"run_id": "nope", **metric()}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_latest_metric_keeps_the_largest_step(owner_api, run):
    owner_api.post("runs/log-batch", {"run_id": run.run_uuid, "metrics": [metric(value=3.0, step=5)]})
    owner_api.post("runs/log-batch", {"run_id": run.run_uuid, "metrics": [metric(value=9.0, step=2)]})
    latest = LatestMetric.objects.get(run=run, key="m")
    assert (latest.value, latest.step) == (3.0, 5)


def test_a_deleted_run_refuses_logging(owner_api, run):
    assert owner_api.post("runs/delete", {"run_id": run.run_uuid}).status_code == 200
    response = owner_api.post("runs/log-metric", {"run_id": run.run_uuid, **metric()})
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", "must be in the 'active' state")
    assert owner_api.post("runs/restore", {"run_id": run.run_uuid}).status_code == 200
    assert owner_api.post("runs/log-metric", {"run_id": run.run_uuid, **metric()}).status_code == 200


def test_lifecycle_changes_are_audited(owner_api, run):
    owner_api.post("runs/update", {"run_id": run.run_uuid, "status": "FINISHED", "end_time": 1700000000001})
    owner_api.post("runs/delete", {"run_id": run.run_uuid})
    actions = list(
        AuditEvent.objects.filter(object_type="tracking.run", object_id=str(run.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == ["tracking.run.created", "tracking.run.updated", "tracking.run.deleted"]
    updated = AuditEvent.objects.get(object_id=str(run.pk), action="tracking.run.updated")
    assert updated.changes["status"] == ["RUNNING", "FINISHED"]


def test_session_users_need_a_csrf_token_to_write(users, run):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["scientist"])
    response = browser.post(
        f"{API}/runs/log-metric", json.dumps({"run_id": run.run_uuid, **metric()}), content_type="application/json"
    )
    assert_error(response, 403, "PERMISSION_DENIED", "CSRF")
    assert browser.get(f"{API}/runs/get", {"run_id": run.run_uuid}).status_code == 200


def test_other_scientists_cannot_see_a_private_experiment(users, run):
    other = MlflowHttp(users["engineer"])
    assert_error(other.get("experiments/get", experiment_id=run.experiment_id), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(other.get("runs/get", run_id=run.run_uuid), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(other.post("runs/log-metric", {"run_id": run.run_uuid, **metric()}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert not Metric.objects.filter(run=run).exists()


def test_readers_of_an_organisation_experiment_get_permission_denied_on_writes(users, run):
    Experiment.objects.filter(pk=run.experiment_id).update(visibility=Experiment.Visibility.ORGANISATION)
    reader = MlflowHttp(users["engineer"])
    assert reader.get("runs/get", run_id=run.run_uuid).status_code == 200
    assert_error(reader.post("runs/log-metric", {"run_id": run.run_uuid, **metric()}), 403, "PERMISSION_DENIED")
    assert_error(reader.post("runs/create", {"experiment_id": str(run.experiment_id)}), 403, "PERMISSION_DENIED")
    assert_error(reader.post("experiments/delete", {"experiment_id": str(run.experiment_id)}), 403, "PERMISSION_DENIED")
    assert Run.objects.filter(experiment_id=run.experiment_id).count() == 1


def test_roles_without_tracking_cannot_create_experiments(users):
    response = MlflowHttp(users["approver"]).post("experiments/create", {"name": "nope"})
    assert_error(response, 403, "PERMISSION_DENIED")
    assert not Experiment.objects.filter(name="nope").exists()


def test_duplicate_experiment_name_is_resource_already_exists(owner_api):
    assert owner_api.post("experiments/create", {"name": "twice"}).status_code == 200
    assert_error(owner_api.post("experiments/create", {"name": "twice"}), 400, "RESOURCE_ALREADY_EXISTS")


def test_log_metric_costs_a_constant_number_of_queries(owner_api, run, django_assert_max_num_queries):
    owner_api.post("runs/log-metric", {"run_id": run.run_uuid, **metric()})  # warm the token's last-used time
    # token, run, roles, two permission reads, latest-metric read, two writes, savepoint pair (tests)
    with django_assert_max_num_queries(10):
        response = owner_api.post("runs/log-metric", {"run_id": run.run_uuid, **metric(step=1)})
    assert response.status_code == 200


def test_artifact_paths_with_dot_dot_or_absolute_are_refused(owner_api, run, artifact_root):
    base = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_uuid}/artifacts"
    for path in (
        f"{base}/../../../../etc/passwd",
        f"{base}/a/%2e%2e/%2e%2e/x",
        "/api/2.0/mlflow-artifacts/artifacts//etc/passwd",
    ):
        response = owner_api.client.put(path, b"x", content_type="application/octet-stream", **owner_api.headers)
        assert response.status_code in (400, 404), path
        assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert not any(p.is_file() for p in artifact_root.rglob("*")) if artifact_root.exists() else True


def test_artifact_over_the_limit_is_refused_and_not_stored(owner_api, run, artifact_root, settings):
    settings.TRACKING_MAX_ARTIFACT_BYTES = 1024
    path = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_uuid}/artifacts/big.bin"
    response = owner_api.client.put(path, b"x" * 2048, content_type="application/octet-stream", **owner_api.headers)
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert not any(p.is_file() for p in artifact_root.rglob("*")) if artifact_root.exists() else True


def test_artifacts_of_a_hidden_experiment_do_not_exist(users, run, artifact_root):
    owner = MlflowHttp(users["scientist"])
    path = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_uuid}/artifacts/secret.txt"
    assert owner.client.put(path, b"secret", content_type="text/plain", **owner.headers).status_code == 200
    other = MlflowHttp(users["engineer"])
    assert other.client.get(path, **other.headers).status_code == 404
    listing = other.client.get("/api/2.0/mlflow-artifacts/artifacts", {"path": ""}, **other.headers).json()
    assert listing["files"] == []
    assert b"".join(owner.client.get(path, **owner.headers).streaming_content) == b"secret"


def test_params_and_tags_at_mlflow_s_length_limits_are_stored(owner_api, run):
    # Random text does not compress: it would overflow a btree index row on PostgreSQL.
    import secrets

    long_param = secrets.token_hex(3000)  # 6,000 characters
    long_tag = secrets.token_hex(4000)  # 8,000 characters
    body = {
        "run_id": run.run_uuid,
        "params": [{"key": "p", "value": long_param}],
        "tags": [{"key": "t", "value": long_tag}],
    }
    assert owner_api.post("runs/log-batch", body).status_code == 200
    assert Param.objects.get(run=run, key="p").value == long_param
    assert RunTag.objects.get(run=run, key="t").value == long_tag


def test_logged_model_search_filters_by_name(owner_api, run):
    for name in ("model", "other"):
        body = {"experiment_id": str(run.experiment_id), "name": name, "source_run_id": run.run_uuid}
        assert owner_api.post("logged-models", body).status_code == 200
    body = {"experiment_ids": [str(run.experiment_id)], "filter": "name = 'model'"}
    found = owner_api.post("logged-models/search", body).json()["models"]
    assert [model["info"]["name"] for model in found] == ["model"]
    bad = owner_api.post("logged-models/search", {**body, "filter": "params.x = 'y'"})
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE", "Invalid entity type")


def test_search_runs_costs_the_same_queries_for_3_and_30_runs(users, owner_api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    experiment = services.create_experiment(by=users["scientist"], name="many")

    def add_runs(count):
        for index in range(count):
            run = services.create_run(by=users["scientist"], experiment=experiment)
            services.log_batch(
                by=users["scientist"],
                run=run,
                metrics=[services.MetricPoint("acc", index / 100, 1, 0)],
                params=[("model", "rf")],
                tags=[("team", "a")],
            )

    body = {"experiment_ids": [str(experiment.pk)], "filter": "params.model = 'rf'", "order_by": ["metrics.acc DESC"]}
    owner_api.post("runs/search", body)  # the token's first use records its last-used time
    counts = []
    for count in (3, 27):
        add_runs(count)
        with CaptureQueriesContext(connection) as queries:
            response = owner_api.post("runs/search", body)
        counts.append(len(queries))
    assert len(response.json()["runs"]) == 30
    assert counts[0] == counts[1]


def test_an_upload_refused_half_way_leaves_no_file(artifact_root):
    from apps.tracking import artifacts
    from apps.tracking.errors import TooLarge

    def chunks():
        yield b"x" * 1000
        raise TooLarge("over the limit")

    with pytest.raises(TooLarge):
        artifacts.save_stream("1/run/artifacts/big.bin", chunks())
    assert not any(path.is_file() for path in artifact_root.rglob("*"))
    assert artifacts.save_stream("1/run/artifacts/ok.bin", iter([b"ab", b"", b"cd"])) == 4
    assert (artifact_root / "1/run/artifacts/ok.bin").read_bytes() == b"abcd"


def test_json_bodies_fall_back_to_the_standard_encoder_for_what_orjson_refuses():
    import json

    from apps.tracking.mlflow_api import RawJSON, json_response

    assert json.loads(json_response({"big": 2**70, "n": 1.5}).content) == {"big": 2**70, "n": 1.5}
    assert json.loads(json_response({"runs": [{"value": "NaN"}]}).content) == {"runs": [{"value": "NaN"}]}
    raw = RawJSON('[{"key": "p", "value": "v"}]')  # as the database writes params and tags
    assert json.loads(json_response({"big": 2**70, "params": raw}).content)["params"] == [{"key": "p", "value": "v"}]
    assert json.loads(json_response({"params": raw}).content) == {"params": [{"key": "p", "value": "v"}]}


AWKWARD_TEXT = [
    'say "hi"',
    "back\\slash \\n not a newline",
    "line\nbreak\ttab\r",
    "control \x01\x1f",
    "unicode: ünïcødé — 数据 🚀",
    "</script><b>&amp;</b>",
    "",
    " ",
]


@pytest.mark.parametrize("endpoint", ["runs/search", "runs/get"])
def test_params_and_tags_come_back_exactly_as_logged(owner_api, run, endpoint):
    """Params and tags are written into the answer as JSON built by the database: every
    character must survive (quotes, backslashes, control characters, non-ASCII)."""
    params = [{"key": f"p{index}", "value": text} for index, text in enumerate(AWKWARD_TEXT)]
    tags = [{"key": f"t{index}", "value": text} for index, text in enumerate(AWKWARD_TEXT)]
    body = {"run_id": run.run_uuid, "params": params, "tags": tags}
    assert owner_api.post("runs/log-batch", body).status_code == 200
    if endpoint == "runs/search":
        answer = owner_api.post(endpoint, {"experiment_ids": [str(run.experiment_id)]}).json()["runs"][0]
    else:
        answer = owner_api.get(endpoint, run_id=run.run_uuid).json()["run"]
    data = answer["data"]
    assert {p["key"]: p["value"] for p in data["params"]} == {p["key"]: p["value"] for p in params}
    assert {t["key"]: t["value"] for t in data["tags"] if not t["key"].startswith("mlflow.")} == {
        t["key"]: t["value"] for t in tags
    }


def test_a_run_without_params_or_tags_answers_empty_lists(owner_api, users):
    experiment = services.create_experiment(by=users["scientist"], name="bare")
    run = Run.objects.create(experiment=experiment, user=users["scientist"], run_uuid="0" * 32, start_time=0)
    data = owner_api.get("runs/get", run_id=run.run_uuid).json()["run"]["data"]
    assert data == {"metrics": [], "params": [], "tags": []}
