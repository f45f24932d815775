"""An experiment's settings page: who may change it, sharing through guardian, delete and
restore, every change audited."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.tracking import selectors, services
from apps.tracking.errors import InvalidParameter
from apps.tracking.models import Experiment, Lifecycle
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(users):
    experiment = services.create_experiment(by=users["scientist"], name="churn")
    services.create_run(by=users["scientist"], experiment=experiment)
    return experiment


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def settings_url(experiment) -> str:
    return reverse("tracking:experiment_settings", args=[experiment.pk])


def test_owner_renames_and_opens_an_experiment_to_the_organisation(users, experiment):
    response = client_for(users["scientist"]).post(
        settings_url(experiment),
        {"action": "update", "name": "churn-v2", "description": "Why **churn**", "visibility": "organisation"},
    )
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.name, experiment.visibility) == ("churn-v2", "organisation")
    assert experiment.tags.get(key="mlflow.note.content").value == "Why **churn**"
    event = AuditEvent.objects.filter(action="tracking.experiment.updated").get()
    assert event.changes["name"] == ["churn", "churn-v2"]
    assert selectors.experiment_for(users["engineer"], experiment.pk) is not None


def test_sharing_with_a_user_makes_the_experiment_visible_and_unsharing_hides_it(users, experiment):
    engineer = users["engineer"]
    assert selectors.experiment_for(engineer, experiment.pk) is None
    owner = client_for(users["scientist"])
    owner.post(settings_url(experiment), {"action": "share", "username": "engineer", "permission": "view_experiment"})
    assert selectors.experiment_for(engineer, experiment.pk) is not None
    assert client_for(engineer).get(reverse("tracking:experiment", args=[experiment.pk])).status_code == 200
    owner.post(settings_url(experiment), {"action": "unshare", "username": "engineer", "permission": "view_experiment"})
    engineer = type(engineer).objects.get(pk=engineer.pk)  # fresh permission caches
    assert selectors.experiment_for(engineer, experiment.pk) is None
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"tracking.experiment.shared", "tracking.experiment.unshared"} <= actions


def test_a_change_share_lets_a_team_log_runs(users, experiment):
    team = accounts.create_team(name="Forecasting", by=users["admin"])
    member = make_user("mia", "Data scientists")
    accounts.add_team_member(team=team, user=member, by=users["admin"])
    services.share_experiment(by=users["scientist"], experiment=experiment, permission="change_experiment", team=team)
    run = services.create_run(by=member, experiment=experiment)
    assert run.user == member
    [share] = selectors.experiment_shares(experiment)
    assert share.grantee == team and share.levels == ["view", "change"]


def test_readers_get_403_and_strangers_404_on_settings(users, experiment):
    assert client_for(users["engineer"]).get(settings_url(experiment)).status_code == 404
    Experiment.objects.filter(pk=experiment.pk).update(visibility="organisation")
    assert client_for(users["engineer"]).get(settings_url(experiment)).status_code == 403
    response = client_for(users["engineer"]).post(settings_url(experiment), {"action": "delete"})
    assert response.status_code == 403
    assert Experiment.objects.get(pk=experiment.pk).lifecycle_stage == Lifecycle.ACTIVE


def test_delete_moves_runs_to_the_trash_and_restore_brings_them_back(users, experiment):
    owner = client_for(users["scientist"])
    owner.post(settings_url(experiment), {"action": "delete"})
    assert set(experiment.runs.values_list("lifecycle_stage", flat=True)) == {Lifecycle.DELETED}
    owner.post(settings_url(experiment), {"action": "restore"})
    assert set(experiment.runs.values_list("lifecycle_stage", flat=True)) == {Lifecycle.ACTIVE}


def test_a_bad_share_shows_an_error_and_changes_nothing(users, experiment):
    response = client_for(users["scientist"]).post(
        settings_url(experiment), {"action": "share", "username": "ghost", "permission": "view_experiment"}
    )
    assert response.status_code == 400
    assert "No active user named" in response.content.decode()
    assert selectors.experiment_shares(experiment) == []


def test_the_default_experiment_cannot_be_deleted(users):
    default = services.default_experiment()
    with pytest.raises(InvalidParameter):
        services.delete_experiment(by=users["admin"], experiment=default)
