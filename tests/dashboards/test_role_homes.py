"""Each role's home: who lands where, switching between roles, what every widget shows (only
what the user may see) and a query count that does not grow with the data."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.roles import ADMIN, APPROVER, ENGINEER
from apps.audit.services import record
from apps.catalog.models import Dataset
from apps.dashboards import selectors
from apps.dashboards.views import SESSION_KEY
from apps.deployments.models import ApprovalRule, DeploymentRequest, Endpoint, Environment
from apps.jobs.models import Job
from tests.conftest import make_user
from tests.dashboards.conftest import make_version
from tests.tracking.factories import make_experiment

pytestmark = pytest.mark.django_db

ROLES = ["scientist", "engineer", "approver", "ops", "owner", "admin"]
# The largest homes (scientist's, admin's) need 14 queries with the session, the user and the
# navigation; this leaves room for a widget more without hiding an N+1 over 25 rows.
MAX_QUERIES = 20


def home_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def add_role(user, role: str) -> None:
    user.groups.add(Group.objects.get(name=role))
    user.__dict__.pop("_causeway_roles", None)


# --- Which home --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_role_lands_on_its_own_home(users, client, role):
    client.force_login(users[role])
    response = client.get("/")
    assert response.context["role"] == role
    assert f'data-role-home="{role}"' in response.content.decode()


def test_signing_in_leads_to_the_home_of_the_users_role(users, client):
    response = client.post("/login/", {"username": "approver", "password": "a-long-test-password-42"}, follow=True)
    assert response.context["role"] == "approver"


def test_a_user_with_several_roles_lands_on_the_first_in_home_order(users, client):
    add_role(users["approver"], ENGINEER)
    client.force_login(users["approver"])
    assert client.get("/").context["role"] == "engineer"


def test_a_user_with_several_roles_can_switch_and_the_choice_is_remembered(users, client):
    add_role(users["engineer"], APPROVER)
    client.force_login(users["engineer"])
    assert client.get("/?role=approver").context["role"] == "approver"
    assert client.session[SESSION_KEY] == "approver"
    assert client.get("/").context["role"] == "approver"


def test_the_role_switcher_lists_only_the_roles_the_user_holds(users, client):
    add_role(users["engineer"], APPROVER)
    client.force_login(users["engineer"])
    tabs = client.get("/").context["role_tabs"]
    assert [tab["slug"] for tab in tabs] == ["engineer", "approver"]
    assert 'href="?role=approver"' in client.get("/").content.decode()


def test_a_user_with_one_role_sees_no_switcher(users, client):
    client.force_login(users["scientist"])
    assert 'data-testid="role-switcher"' not in client.get("/").content.decode()


def test_switching_to_a_role_the_user_does_not_hold_is_refused(users, client):
    client.force_login(users["scientist"])
    response = client.get("/?role=admin")
    assert response.status_code == 403
    assert response.context["role"] == "scientist"
    assert "You do not hold the Platform admin role" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_a_refused_switch_keeps_the_remembered_home(users, client):
    add_role(users["engineer"], APPROVER)
    client.force_login(users["engineer"])
    client.get("/?role=approver")
    assert client.get("/?role=ops").status_code == 403
    assert client.session[SESSION_KEY] == "approver"


def test_switching_to_a_word_that_is_no_role_is_a_bad_request(users, client):
    client.force_login(users["scientist"])
    response = client.get("/?role=<script>")
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()


def test_a_remembered_role_the_user_no_longer_holds_falls_back_to_their_first_role(users, client):
    add_role(users["engineer"], APPROVER)
    client.force_login(users["engineer"])
    client.get("/?role=approver")
    users["engineer"].groups.remove(Group.objects.get(name=APPROVER))
    assert client.get("/").context["role"] == "engineer"


def test_a_superuser_without_role_groups_gets_the_admin_home(db, client):
    client.force_login(make_user("root", is_superuser=True))
    assert client.get("/").context["role"] == "admin"


def test_the_selector_refuses_a_role_the_user_does_not_hold(users):
    with pytest.raises(selectors.RoleNotHeld):
        selectors.home_for(users["scientist"], "admin")


# --- No role -----------------------------------------------------------------------------------


def test_a_user_without_roles_gets_a_helpful_empty_home(users, client):
    client.force_login(users["nobody"])
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["role"] is None
    assert "You have no role yet" in html
    assert "admin@example.test" in html  # who to ask


def test_a_user_without_roles_cannot_switch_to_any_home(users, client):
    client.force_login(users["nobody"])
    response = client.get("/?role=scientist")
    assert response.status_code == 403
    assert response.context["role"] is None


# --- Query counts --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_role_home_needs_a_bounded_number_of_queries(users, client, populate, role, django_assert_max_num_queries):
    populate(25)
    client.force_login(users[role])
    client.get("/")  # the first visit loads the session's auth data
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get("/")
    assert response.status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_more_data_does_not_add_queries_to_a_role_home(users, client, populate, role):
    populate(2)
    client.force_login(users[role])
    client.get("/")
    before = home_queries(client, "/")
    populate(12)
    assert home_queries(client, "/") == before


def test_every_widget_is_filled_on_a_busy_platform(users, client, populate):
    populate(3)
    for role, widgets in {
        "scientist": [
            "recent_datasets",
            "followed_datasets",
            "recent_experiments",
            "recent_runs",
            "my_access_requests",
        ],
        "engineer": ["model_rows", "my_requests", "request_counts"],
        "approver": ["inbox", "recently_decided", "access_inbox"],
        "ops": ["live_endpoints", "ready_to_deploy", "running_jobs", "failed_jobs"],
        "owner": ["live_endpoints"],
        "admin": ["recent_users", "dormant_users", "teams", "permission_changes", "recent_audit"],
    }.items():
        client.force_login(users[role])
        context = client.get("/").context
        assert all(context[widget] for widget in widgets), role


# --- Data scientist ------------------------------------------------------------------------------


def test_scientist_home_hides_private_datasets_and_experiments_of_others(users, client, stranger):
    Dataset.objects.create(name="Secret payroll", slug="secret-payroll", owner=stranger, visibility="private")
    Dataset.objects.create(name="Open weather", slug="open-weather", owner=stranger)
    make_experiment(stranger, name="secret-experiment", visibility="private")
    make_experiment(stranger, name="open-experiment", visibility="organisation")
    client.force_login(users["scientist"])
    html = client.get("/").content.decode()
    assert "Open weather" in html and "open-experiment" in html
    assert "Secret payroll" not in html and "secret-experiment" not in html


def test_scientist_home_shows_the_state_of_their_access_requests(users, client, populate):
    populate(1)
    client.force_login(users["scientist"])
    response = client.get("/")
    assert response.context["my_access_counts"] == [{"value": "pending", "label": "Pending", "n": 1}]
    assert "Pending" in response.content.decode()


def test_scientist_home_lists_only_their_own_jobs(users, client, stranger):
    Job.objects.create(kind="theirs", requested_by=stranger)
    Job.objects.create(kind="mine", requested_by=users["scientist"])
    client.force_login(users["scientist"])
    assert [job.kind for job in client.get("/").context["my_jobs"]] == ["mine"]


def test_an_empty_scientist_home_says_what_to_do_next(users, client):
    client.force_login(users["scientist"])
    html = client.get("/").content.decode()
    assert "Register one" in html
    assert "MLFLOW_TRACKING_URI" in html


# --- ML engineer ---------------------------------------------------------------------------------


def test_engineer_home_shows_card_completeness_of_the_newest_version(users, client):
    make_version(
        users["engineer"], name="churn", card={"factors": "Region, tenure.", "evaluation_data": "Q3 hold-out."}
    )
    client.force_login(users["engineer"])
    row = client.get("/").context["model_rows"][0]
    assert row["model"].name == "churn"
    assert row["score"] == 17  # 2 of 12 sections
    assert row["mine"] is True


def test_engineer_home_lists_their_own_models_first(users, client, stranger):
    make_version(users["engineer"], name="mine")
    for n in range(10):
        make_version(stranger, name=f"organisation-{n}")
    client.force_login(users["engineer"])
    rows = client.get("/").context["model_rows"]
    assert rows[0]["model"].name == "mine"


def test_engineer_home_hides_private_models_of_others(users, client, stranger):
    make_version(stranger, name="secret-model", visibility="private")
    client.force_login(users["engineer"])
    assert "secret-model" not in client.get("/").content.decode()


def test_engineer_home_counts_their_deployment_requests_by_state(users, client, populate):
    populate(2)
    client.force_login(users["engineer"])
    counts = {c["value"]: c["n"] for c in client.get("/").context["request_counts"]}
    assert counts == {"pending": 2, "approved": 2}


# --- Approver ------------------------------------------------------------------------------------


def test_approver_inbox_lists_only_requests_waiting_for_them(users, client, populate, stranger):
    populate(2)
    elsewhere = Environment.objects.create(name="team-only")
    ApprovalRule.objects.create(environment=elsewhere, role=ADMIN, required_approvals=1)
    version = make_version(users["engineer"], name="other-env")
    DeploymentRequest.objects.create(
        model_version=version, environment=elsewhere, requester=users["engineer"], endpoint_name="x",
        justification="j", state=DeploymentRequest.State.PENDING,
    )  # fmt: skip
    client.force_login(users["approver"])
    context = client.get("/").context
    assert context["inbox_count"] == 2
    assert {req.environment.name for req in context["inbox"]} == {"production"}


def test_approver_home_lists_what_they_decided_and_access_requests_for_them(users, client, populate):
    populate(2)
    client.force_login(users["approver"])
    context = client.get("/").context
    assert len(context["recently_decided"]) == 2
    assert context["access_inbox_count"] == 2


def test_an_empty_approver_home_says_nothing_waits(users, client):
    client.force_login(users["approver"])
    assert "Nothing waits for your decision" in client.get("/").content.decode()


# --- Operations ----------------------------------------------------------------------------------


def test_ops_home_shows_the_job_queue(users, client, populate):
    populate(2)
    client.force_login(users["ops"])
    context = client.get("/").context
    assert context["job_counts"]["running"] == 2 and context["job_counts"]["failed"] == 2
    assert all(job.status == "failed" for job in context["failed_jobs"])
    assert "boom" in client.get("/").content.decode()


def test_ops_home_embeds_monitoring_and_alerting_widgets_when_they_exist(users, client, monkeypatch):
    monkeypatch.setattr(selectors, "url_or_none", lambda name, *args: f"/fake/{name.replace(':', '/')}/")
    client.force_login(users["ops"])
    html = client.get("/").content.decode()
    assert 'hx-get="/fake/monitoring/home_widget/"' in html
    assert 'hx-get="/fake/alerting/home_widget/"' in html
    assert 'hx-trigger="load"' in html


def test_ops_home_works_before_monitoring_and_alerting_exist(users, client):
    client.force_login(users["ops"])
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    if selectors.url_or_none("monitoring:home_widget") is None:
        assert 'data-widget="monitoring:home_widget"' in html
        assert "It will show here once that part of Causeway is installed" in html


# --- Business owner ------------------------------------------------------------------------------


def test_owner_home_embeds_the_portfolio_widget(users, client, monkeypatch):
    monkeypatch.setattr(selectors, "url_or_none", lambda name, *args: f"/fake/{name.replace(':', '/')}/")
    client.force_login(users["owner"])
    assert 'hx-get="/fake/value/home_widget/"' in client.get("/").content.decode()


def test_owner_home_shows_only_live_models_they_may_see(users, client, environment, stranger):
    shown = make_version(stranger, name="open-model")
    hidden = make_version(stranger, name="secret-model", visibility="private")
    Endpoint.objects.create(name="open-endpoint", environment=environment, owner=stranger, current_version=shown)
    Endpoint.objects.create(name="secret-endpoint", environment=environment, owner=stranger, current_version=hidden)
    client.force_login(users["owner"])
    context = client.get("/").context
    assert [e.name for e in context["live_endpoints"]] == ["open-endpoint"]
    assert context["live_endpoint_count"] == 1


# --- Platform admin ------------------------------------------------------------------------------


def test_admin_home_lists_permission_changes_but_not_other_events(users, client):
    dataset = Dataset.objects.create(name="Loans", slug="loans", owner=users["admin"])
    record(actor=users["admin"], action="dataset.share", target=dataset)
    record(actor=users["admin"], action="user.set_roles", target=users["scientist"])
    record(actor=users["admin"], action="dataset.update", target=dataset)
    client.force_login(users["admin"])
    context = client.get("/").context
    assert [e.action for e in context["permission_changes"]] == ["user.set_roles", "dataset.share"]
    assert [e.action for e in context["recent_audit"]][:3] == ["dataset.update", "user.set_roles", "dataset.share"]


def test_admin_home_counts_people_without_a_role_and_dormant_ones(users, client):
    make_user("gone", is_active=False)
    client.force_login(users["admin"])
    people = client.get("/").context["people"]
    assert people["deactivated"] == 1
    assert people["without_role"] == 1  # nobody
    assert people["dormant"] >= 6  # the fixture users never signed in


def test_admin_widgets_are_empty_for_someone_who_is_not_an_admin(users):
    assert selectors.admin_home(users["approver"])["people"] is None
