"""`/serve/<endpoint>/invocations` and `/ping`: MLflow's scoring protocol, signature checks,
who may call, canary splits and reloads when the endpoint's version changes."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from guardian.shortcuts import assign_perm

from apps.accounts import services as accounts
from apps.accounts.models import Team
from apps.accounts.roles import ADMIN
from apps.deployments.models import Endpoint, Environment
from apps.deployments.serving import protocol, views
from tests.conftest import make_user
from tests.deployments.test_serving_loader import (  # noqa: F401  (serving_storage is a fixture)
    FEATURES,
    NUMERIC,
    pickle_version,
    pipeline_model,
    serving_storage,
    skops_version,
    tree_model,
    tree_version,
)

URL = "/serve/{}/invocations"
ROWS = FEATURES.head(3)
EXPECTED = [int(v) for v in pipeline_model().predict(ROWS)]


@pytest.fixture
def owner(db):
    return make_user("endpoint-owner")


@pytest.fixture
def environment(db):
    return Environment.objects.create(name="production")


@pytest.fixture
def version(serving_storage, owner):  # noqa: F811 - the fixture imported above
    return skops_version(owner, name="churn")


@pytest.fixture
def endpoint(environment, owner, version):
    return Endpoint.objects.create(name="churn", environment=environment, owner=owner, current_version=version)


def token_for(user) -> str:
    _, secret = accounts.create_token(user=user, name="serving")
    return secret


@pytest.fixture
def caller(endpoint):
    """A user granted invoke_endpoint on the endpoint, with their token."""
    user = make_user("caller")
    assign_perm("deployments.invoke_endpoint", user, endpoint)
    return user


@pytest.fixture
def client(caller):
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_for(caller)}")


def post(client, payload, *, name="churn", content_type="application/json", **extra):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(URL.format(name), data=body, content_type=content_type, **extra)


def split(frame=ROWS):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


# --- Payload formats ---------------------------------------------------------------------------------


def test_dataframe_split_is_scored(client):
    response = post(client, split())
    assert response.status_code == 200, response.content
    assert response.json() == {"predictions": EXPECTED}


def test_dataframe_split_with_an_index_is_scored(client):
    payload = split()
    payload["dataframe_split"]["index"] = [10, 11, 12]
    assert post(client, payload).json() == {"predictions": EXPECTED}


def test_dataframe_records_are_scored(client):
    response = post(client, {"dataframe_records": ROWS.to_dict(orient="records")})
    assert response.json() == {"predictions": EXPECTED}


def test_instances_as_records_are_scored(client):
    response = post(client, {"instances": ROWS.to_dict(orient="records")})
    assert response.json() == {"predictions": EXPECTED}


def test_instances_as_rows_are_matched_to_the_signature_by_position(client):
    response = post(client, {"instances": ROWS.values.tolist()})
    assert response.json() == {"predictions": EXPECTED}


def test_inputs_as_a_dictionary_of_columns_are_scored(client):
    response = post(client, {"inputs": ROWS.to_dict(orient="list")})
    assert response.json() == {"predictions": EXPECTED}


def test_csv_body_is_scored(client):
    response = post(client, ROWS.to_csv(index=False), content_type="text/csv")
    assert response.status_code == 200, response.content
    assert response.json() == {"predictions": EXPECTED}


def test_extra_columns_are_ignored_as_mlflow_does(client):
    response = post(client, split(ROWS.assign(unused=["x", "y", "z"])))
    assert response.json() == {"predictions": EXPECTED}


def test_columns_in_another_order_are_reordered_to_the_signature(client):
    response = post(client, split(ROWS[["region", "n", "b", "a"]]))
    assert response.json() == {"predictions": EXPECTED}


def test_integers_are_accepted_for_a_double_column(client):
    records = ROWS.to_dict(orient="records")
    records[0]["a"] = 2
    assert post(client, {"dataframe_records": records}).status_code == 200


# --- Bad input: 400 with MLflow's error shape, naming the field --------------------------------------


def assert_bad_request(response, *fragments, status=400):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "BAD_REQUEST"
    for fragment in fragments:
        assert fragment in body["message"]


def test_missing_column_is_named(client):
    assert_bad_request(post(client, split(ROWS.drop(columns=["b"]))), "Model is missing inputs ['b']")


def test_missing_column_in_csv_is_named(client):
    response = post(client, ROWS.drop(columns=["region"]).to_csv(index=False), content_type="text/csv")
    assert_bad_request(response, "missing inputs ['region']")


def test_string_in_a_double_column_names_the_field_and_expected_type(client):
    records = ROWS.to_dict(orient="records")
    records[1]["a"] = "high"
    assert_bad_request(post(client, {"dataframe_records": records}), "column a", "Expected double", "string")


def test_fraction_in_a_long_column_names_the_field_and_expected_type(client):
    records = ROWS.to_dict(orient="records")
    records[0]["n"] = 2.5
    assert_bad_request(post(client, {"dataframe_records": records}), "column n", "Expected long", "float")


def test_number_in_a_string_column_names_the_field_and_expected_type(client):
    records = ROWS.to_dict(orient="records")
    records[2]["region"] = 7
    assert_bad_request(post(client, {"dataframe_records": records}), "column region", "Expected string")


def test_boolean_is_not_a_number(client):
    records = ROWS.to_dict(orient="records")
    records[0]["b"] = True
    assert_bad_request(post(client, {"dataframe_records": records}), "column b", "Expected double", "boolean")


def test_wrong_type_in_csv_names_the_field(client):
    frame = ROWS.assign(n=["one", "two", "three"])
    assert_bad_request(post(client, frame.to_csv(index=False), content_type="text/csv"), "column n", "Expected long")


def test_malformed_json_is_a_bad_request(client):
    assert_bad_request(post(client, '{"dataframe_split": {'), "valid JSON")


def test_json_list_body_is_a_bad_request(client):
    assert_bad_request(post(client, "[1, 2, 3]"), "Received a list")


def test_unknown_payload_key_is_a_bad_request(client):
    assert_bad_request(post(client, {"rows": [[1, 2]]}), "exactly one of the input fields")


def test_two_payload_keys_are_a_bad_request(client):
    assert_bad_request(post(client, {**split(), "instances": []}), "exactly one of the input fields")


def test_ragged_dataframe_split_is_a_bad_request(client):
    payload = split()
    payload["dataframe_split"]["data"][1] = [1.0]
    assert_bad_request(post(client, payload), "Row 1")


def test_rows_of_the_wrong_width_are_a_bad_request(client):
    assert_bad_request(post(client, {"instances": [[1.0, 2.0]]}), "signature has 4 columns")


def test_invalid_csv_is_a_bad_request(client):
    assert_bad_request(post(client, b'a,b\n"1,2', content_type="text/csv"), "Failed to parse input")


def test_non_utf8_body_is_a_bad_request(client):
    assert_bad_request(post(client, b"\xff\xfe{}"), "UTF-8")


def test_unsupported_content_type_is_refused(client):
    assert_bad_request(post(client, "a=1", content_type="application/x-www-form-urlencoded"), status=415)


def test_oversize_body_is_refused_before_it_is_parsed(client, settings):
    settings.SERVING_MAX_BODY_BYTES = 1000
    payload = split(FEATURES.sample(200, replace=True, random_state=0))
    assert_bad_request(post(client, payload), "larger than 1000 bytes", status=413)


def test_input_the_model_itself_rejects_is_a_bad_request_not_a_500(client):
    records = ROWS.to_dict(orient="records")
    records[0]["a"] = None  # NaN reaches the scaler and the regression, which refuse it
    assert_bad_request(post(client, {"dataframe_records": records}), "evaluating the model")


def test_get_on_invocations_is_not_allowed(client):
    assert client.get(URL.format("churn")).status_code == 405


# --- Who may call --------------------------------------------------------------------------------------


def test_no_token_is_401(endpoint):
    response = post(Client(), split())
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "Bearer" in response["WWW-Authenticate"]


def test_a_wrong_token_is_401(endpoint):
    response = post(Client(HTTP_AUTHORIZATION="Bearer cw_not-a-real-token"), split())
    assert response.status_code == 401


def test_a_caller_who_may_see_the_endpoint_but_not_invoke_it_gets_403(endpoint):
    operator = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(make_user('operator', 'Operations'))}")
    response = post(operator, split())
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"


def test_a_caller_who_may_not_see_the_endpoint_gets_the_same_404_as_for_no_endpoint(endpoint):
    stranger = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(make_user('stranger'))}")
    response = post(stranger, split())
    assert response.status_code == 404
    assert response.json() == post(stranger, split(), name="no-such-endpoint").json() | {
        "message": "No live endpoint named 'churn'."
    }


def test_an_unknown_endpoint_is_404(client):
    response = post(client, split(), name="no-such-endpoint")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_retired_endpoint_is_404(client, endpoint):
    Endpoint.objects.filter(pk=endpoint.pk).update(state=Endpoint.State.RETIRED)
    assert post(client, split()).status_code == 404


def test_the_owner_may_invoke_without_a_grant(endpoint, owner):
    response = post(Client(HTTP_AUTHORIZATION=f"Bearer {token_for(owner)}"), split())
    assert response.status_code == 200


def test_a_platform_admin_may_invoke(endpoint):
    admin = make_user("platform-admin")
    admin.groups.add(Group.objects.get(name=ADMIN))
    assert post(Client(HTTP_AUTHORIZATION=f"Bearer {token_for(admin)}"), split()).status_code == 200


def test_a_team_granted_invoke_may_invoke(endpoint):
    member = make_user("team-member")
    group = Group.objects.create(name="team:scorers")
    Team.objects.create(name="Scorers", slug="scorers", group=group)
    group.user_set.add(member)
    assign_perm("deployments.invoke_endpoint", group, endpoint)
    assert post(Client(HTTP_AUTHORIZATION=f"Bearer {token_for(member)}"), split()).status_code == 200


def test_members_of_the_endpoints_team_may_invoke(endpoint):
    member = make_user("endpoint-team-member")
    group = Group.objects.create(name="team:churn-owners")
    team = Team.objects.create(name="Churn owners", slug="churn-owners", group=group)
    group.user_set.add(member)
    Endpoint.objects.filter(pk=endpoint.pk).update(team=team)
    assert post(Client(HTTP_AUTHORIZATION=f"Bearer {token_for(member)}"), split()).status_code == 200


def test_basic_auth_with_the_token_as_password_works(endpoint, caller):
    import base64

    credentials = base64.b64encode(f"caller:{token_for(caller)}".encode()).decode()
    assert post(Client(HTTP_AUTHORIZATION=f"Basic {credentials}"), split()).status_code == 200


# --- Versions, canary, reload, policy -------------------------------------------------------------------


def test_the_answering_version_is_named_in_a_header(client, version):
    assert post(client, split())[views.MODEL_VERSION_HEADER] == f"churn/{version.version}"


def test_canary_takes_the_requests_whose_draw_falls_below_its_share(client, endpoint, owner, version, monkeypatch):
    canary = tree_version(owner, model=version.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(canary_version=canary, canary_percent=10)
    monkeypatch.setattr(views, "draw", lambda: 9.99)
    assert post(client, split())[views.MODEL_VERSION_HEADER] == "churn/2"
    monkeypatch.setattr(views, "draw", lambda: 10.0)
    assert post(client, split())[views.MODEL_VERSION_HEADER] == "churn/1"


def test_each_request_is_logged_with_the_version_that_answered(client, endpoint, owner, version, monkeypatch, caplog):
    canary = tree_version(owner, model=version.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(canary_version=canary, canary_percent=50)
    monkeypatch.setattr(views, "draw", lambda: 1.0)
    with caplog.at_level(logging.INFO, logger="causeway.serving"):
        post(client, split())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serve ")]
    assert len(lines) == 1
    assert "endpoint=churn version=churn/2 canary=yes status=200 rows=3" in lines[0]


def test_refused_requests_are_logged_too(endpoint, caplog):
    stranger = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(make_user('stranger'))}")
    with caplog.at_level(logging.INFO, logger="causeway.serving"):
        post(stranger, split())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serve ")]
    assert len(lines) == 1
    assert "endpoint=churn version=- canary=no status=404 rows=0" in lines[0]


def test_a_new_version_on_the_endpoint_is_loaded_on_the_next_request(client, endpoint, owner, version):
    assert post(client, split())[views.MODEL_VERSION_HEADER] == "churn/1"
    newer = tree_version(owner, model=version.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(current_version=newer, previous_version=version)
    response = post(client, split())
    assert response[views.MODEL_VERSION_HEADER] == "churn/2"
    assert response.json()["predictions"] == [int(v) for v in tree_model().predict(ROWS[NUMERIC])]


def test_a_pickled_model_is_not_served_where_pickles_are_forbidden(client, endpoint, owner, version):
    pickled = pickle_version(owner, model=version.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(current_version=pickled)
    response = post(client, split())
    assert response.status_code == 503
    assert "does not allow pickle" in response.json()["message"]


def test_a_pickled_model_is_served_where_the_environment_allows_pickles(client, endpoint, environment, owner, version):
    pickled = pickle_version(owner, model=version.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(current_version=pickled)
    Environment.objects.filter(pk=environment.pk).update(allow_pickle=True)
    response = post(client, split())
    assert response.status_code == 200
    assert response.json() == {"predictions": EXPECTED}


def test_an_endpoint_without_a_version_is_unavailable(client, endpoint):
    Endpoint.objects.filter(pk=endpoint.pk).update(current_version=None)
    assert post(client, split()).status_code == 503


def test_ping_loads_the_model_and_answers_200(client, endpoint):
    response = client.get("/serve/churn/ping")
    assert response.status_code == 200
    assert response[views.MODEL_VERSION_HEADER] == "churn/1"


def test_ping_needs_a_token(endpoint):
    assert Client().get("/serve/churn/ping").status_code == 401


def test_ping_of_a_model_that_cannot_load_is_503(client, endpoint, owner, version):
    Endpoint.objects.filter(pk=endpoint.pk).update(
        current_version=pickle_version(owner, model=version.registered_model)
    )
    assert client.get("/serve/churn/ping").status_code == 503


# --- The request path stays lean ---------------------------------------------------------------------------


def test_a_scoring_request_costs_two_queries_once_the_model_is_loaded(client, endpoint, django_assert_num_queries):
    post(client, split())  # loads the model, records the token's last use
    with django_assert_num_queries(2):  # the token with its user; the endpoint with the caller's rights
        response = post(client, {"dataframe_records": FEATURES.to_dict(orient="records")})
    assert response.status_code == 200


def test_queries_do_not_grow_with_the_caller_s_teams_or_grants(client, endpoint, caller, django_assert_num_queries):
    for number in range(5):
        group = Group.objects.create(name=f"team:t{number}")
        Team.objects.create(name=f"T{number}", slug=f"t{number}", group=group)
        group.user_set.add(caller)
        assign_perm("deployments.invoke_endpoint", group, endpoint)
    post(client, split())
    with django_assert_num_queries(2):
        assert post(client, split()).status_code == 200


# --- The protocol on its own (no database) --------------------------------------------------------------


SIGNATURE = protocol.parse_signature(
    [
        {"type": "double", "name": "a", "required": True},
        {"type": "long", "name": "n", "required": True},
        {"type": "string", "name": "note", "required": False},
    ]
)


def parse(payload, signature=SIGNATURE, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return protocol.parse_request(body, content_type, signature)


def test_an_integer_too_large_for_a_double_is_a_bad_request():
    with pytest.raises(protocol.ProtocolError, match="column a. Expected double but got a number out of range"):
        parse(b'{"dataframe_records": [{"a": 1' + b"0" * 400 + b', "n": 1}]}')


def test_an_integer_too_large_for_a_long_is_a_bad_request():
    with pytest.raises(protocol.ProtocolError, match="column n. Expected long"):
        parse({"dataframe_records": [{"a": 1.0, "n": 2**70}]})


def test_deeply_nested_json_is_a_bad_request():
    with pytest.raises(protocol.ProtocolError, match="valid JSON"):
        parse(b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_a_missing_value_in_a_long_column_says_why():
    with pytest.raises(protocol.ProtocolError, match="cannot hold missing values"):
        parse({"dataframe_records": [{"a": 1.0, "n": None}]})


def test_an_optional_column_may_be_left_out():
    frame = parse({"dataframe_records": [{"a": 1.0, "n": 2}]})
    assert list(frame.columns) == ["a", "n", "note"]
    assert frame["note"].tolist() == [None]


def test_a_model_without_a_signature_gets_the_columns_as_sent():
    frame = parse({"dataframe_split": {"columns": ["x", "y"], "data": [[1, "a"], [2, "b"]]}}, signature=None)
    assert frame.to_dict(orient="list") == {"x": [1, 2], "y": ["a", "b"]}


def test_a_tensor_signature_takes_an_array_of_its_shape():
    signature = protocol.parse_signature([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}])
    array = parse({"inputs": [[1, 2], [3, 4]]}, signature=signature)
    assert array.dtype == "float32" and array.shape == (2, 2)
    with pytest.raises(protocol.ProtocolError, match="expects \\[-1, 2\\]"):
        parse({"inputs": [[1, 2, 3]]}, signature=signature)


def test_predictions_of_a_frame_are_records():
    import pandas as pd

    body = protocol.predictions_json(pd.DataFrame({"label": [1], "score": [0.5]}))
    assert json.loads(body) == {"predictions": [{"label": 1, "score": 0.5}]}
