"""The stock `mlflow` client's model registry against a live Causeway server: register,
alias, stage, search and load `models:/name@alias` through the artifact proxy."""

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from apps.audit.models import AuditEvent
from apps.registry.models import ModelCard, ModelVersion, RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

FEATURES = np.array([[0.0], [1.0], [2.0], [3.0]])
LABELS = np.array([0, 0, 1, 1])


def _log_sklearn_model(experiment: str = "registry"):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.5).fit(FEATURES, LABELS)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as active:
        mlflow.log_param("C", 0.5)
        mlflow.log_metric("accuracy", 0.75)
        info = mlflow.sklearn.log_model(model, name="model", input_example=FEATURES[:2])
    return model, active.info.run_id, info


def test_stock_client_registers_aliases_stages_searches_and_loads_by_alias(users, client_for):
    client = client_for(users["scientist"])
    model, run_id, info = _log_sklearn_model()

    first = mlflow.register_model(info.model_uri, "churn")
    assert first.version == "1" and first.run_id == run_id and first.status == "READY"
    second = client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)
    assert second.version == "2"

    client.set_registered_model_alias("churn", "champion", "2")
    by_alias = client.get_model_version_by_alias("churn", "champion")
    assert by_alias.version == "2" and by_alias.aliases == ["champion"]
    assert client.get_registered_model("churn").aliases == {"champion": "2"}

    assert sorted(v.version for v in client.search_model_versions("name='churn'")) == ["1", "2"]
    assert [v.version for v in client.search_model_versions(f"run_id='{run_id}'", order_by=["version_number ASC"])] == [
        "1",
        "2",
    ]
    staged = client.transition_model_version_stage("churn", "1", "production")
    assert staged.current_stage == "Production"
    assert [v.version for v in client.get_latest_versions("churn", stages=["Production"])] == ["1"]

    loaded = mlflow.pyfunc.load_model("models:/churn@champion")
    assert list(loaded.predict(FEATURES)) == list(model.predict(FEATURES))
    by_number = mlflow.sklearn.load_model("models:/churn/1")
    assert list(by_number.predict(FEATURES)) == list(model.predict(FEATURES))

    version = ModelVersion.objects.get(registered_model__name="churn", version=2)
    assert version.storage_location.startswith("mlflow-artifacts:/") and version.logged_model is not None
    assert version.flavor == "sklearn" and version.signature_inputs[0]["type"] == "tensor"
    card = ModelCard.objects.get(model_version=version)
    assert card.training_procedure["hyperparameters"] == {"C": "0.5"}
    assert card.metrics[0]["name"] == "accuracy" and card.metrics[0]["value"] == 0.75


def test_registered_model_names_are_unique_whatever_their_case(users, client_for):
    client = client_for(users["scientist"])
    client.create_registered_model("Fraud")
    with pytest.raises(MlflowException) as duplicate:
        client.create_registered_model("fraud")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert RegisteredModel.objects.count() == 1


def test_registering_an_unknown_run_is_a_clear_error(users, client_for):
    client = client_for(users["scientist"])
    client.create_registered_model("ghost")
    with pytest.raises(MlflowException) as unknown:
        client.create_model_version("ghost", "runs:/" + "0" * 32 + "/model")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "not found" in unknown.value.message
    assert not ModelVersion.objects.exists()


def test_an_alias_can_only_name_a_version_of_its_own_model(users, client_for):
    client = client_for(users["scientist"])
    _, run_id, info = _log_sklearn_model()
    mlflow.register_model(info.model_uri, "alpha")
    mlflow.register_model(info.model_uri, "beta")
    mlflow.register_model(info.model_uri, "beta")
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("alpha", "champion", "2")  # beta has a v2, alpha does not
    assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert not client.get_registered_model("alpha").aliases


def test_alias_moves_are_audited_from_and_to_a_version(users, client_for):
    client = client_for(users["scientist"])
    _, _, info = _log_sklearn_model()
    mlflow.register_model(info.model_uri, "moving")
    mlflow.register_model(info.model_uri, "moving")
    client.set_registered_model_alias("moving", "champion", "1")
    client.set_registered_model_alias("moving", "champion", "2")
    moved = AuditEvent.objects.get(action="registry.alias.moved")
    assert moved.before == {"alias": "champion", "version": 1}
    assert moved.after == {"alias": "champion", "version": 2}
    assert moved.actor_username == "scientist"


def test_readers_cannot_change_and_outsiders_do_not_see_models(users, client_for):
    owner_client = client_for(users["scientist"])
    owner_client.create_registered_model("secret")
    outsider = make_user("outsider", "Data scientists")
    outsider_client = client_for(outsider)
    with pytest.raises(MlflowException) as hidden:
        outsider_client.get_registered_model("secret")
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert outsider_client.search_registered_models() == []
    RegisteredModel.objects.filter(name="secret").update(visibility=RegisteredModel.Visibility.ORGANISATION)
    assert outsider_client.get_registered_model("secret").name == "secret"
    with pytest.raises(MlflowException) as denied:
        outsider_client.update_registered_model("secret", description="mine now")
    assert denied.value.error_code == "PERMISSION_DENIED"


def test_a_model_shared_with_the_organisation_loads_although_its_experiment_is_private(users, client_for):
    client_for(users["scientist"])
    model, _, info = _log_sklearn_model("private-training")
    mlflow.register_model(info.model_uri, "shared-churn")
    RegisteredModel.objects.filter(name="shared-churn").update(visibility=RegisteredModel.Visibility.ORGANISATION)

    client_for(users["engineer"])
    loaded = mlflow.sklearn.load_model("models:/shared-churn/1")
    assert list(loaded.predict(FEATURES)) == list(model.predict(FEATURES))
    assert mlflow.MlflowClient().get_experiment_by_name("private-training") is None
