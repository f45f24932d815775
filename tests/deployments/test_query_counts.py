"""What the deployment pages cost: the endpoints list, the requests list, a request page and the
inbox run a fixed number of queries, whatever the number of requests, endpoints, approvals,
checks, audit events, params, metrics and datasets (adding objects adds no query)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.roles import APPROVER
from apps.deployments import services
from apps.deployments.models import Approval
from apps.tracking.models import LatestMetric, Param, RunInput
from tests.conftest import make_user
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db

# Ceilings (session, user, roles, messages, the page's own reads): a regression shows up here
# before it shows up as a slow page.
# Measured: endpoints 8, requests 7, inbox 5, request page 21 (a little headroom for the
# shared layout).
MAX_ENDPOINT_LIST = 11
MAX_REQUEST_LIST = 10
MAX_REQUEST_PAGE = 26
MAX_INBOX = 8


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(captured)


@pytest.fixture
def staging(people):
    return make_environment("staging", rules=(("role", APPROVER, 3),))


@pytest.fixture
def version(people, artifact_root):
    return make_version(people["engineer"])


def go_live(user, version, environment, endpoint: str):
    request = make_request(user, version, environment, endpoint=endpoint, state="approved")
    pass_checks(request)
    request = services.start_deploy(request=request, by=user)
    services.mark_live(request=request, job=request.deploy_job)
    # Approvals on the live request: the list shows who approved it.
    for index in range(2):
        Approval.objects.create(
            request=request, approver=make_user(f"{endpoint}-ok-{index}"), decision="approve", comment="ok"
        )
    return request


def test_the_endpoints_list_costs_the_same_for_2_and_12_endpoints(
    client, people, version, staging, django_assert_max_num_queries
):
    client.force_login(people["engineer"])
    for index in range(2):
        go_live(people["engineer"], version, staging, f"e-{index}")
    few = queries_for(client, reverse("deployments:endpoint_list"))
    for index in range(2, 12):
        go_live(people["engineer"], version, staging, f"e-{index}")
    with django_assert_max_num_queries(MAX_ENDPOINT_LIST):
        many = queries_for(client, reverse("deployments:endpoint_list"))
    assert many == few


def test_the_requests_list_costs_the_same_for_3_and_30_requests(
    client, people, version, staging, django_assert_max_num_queries
):
    client.force_login(people["approver"])
    for index in range(3):
        make_request(people["engineer"], version, staging, endpoint=f"r-{index}")
    few = queries_for(client, reverse("deployments:request_list"))
    for index in range(3, 30):
        make_request(people["engineer2"], make_version(people["engineer2"]), staging, endpoint=f"r-{index}")
    with django_assert_max_num_queries(MAX_REQUEST_LIST):
        many = queries_for(client, reverse("deployments:request_list"))
    assert many == few


def test_the_inbox_costs_the_same_for_2_and_20_pending_requests(
    client, people, version, staging, django_assert_max_num_queries
):
    client.force_login(people["approver"])
    for index in range(2):
        services.submit(
            request=make_request(people["engineer"], version, staging, endpoint=f"i-{index}"), by=people["engineer"]
        )
    few = queries_for(client, reverse("deployments:inbox"))
    for index in range(2, 20):
        services.submit(
            request=make_request(people["engineer"], version, staging, endpoint=f"i-{index}"), by=people["engineer"]
        )
    with django_assert_max_num_queries(MAX_INBOX):
        many = queries_for(client, reverse("deployments:inbox"))
    assert many == few


def grow(request, live, candidate, approvers: list, start: int, stop: int) -> None:
    """More of everything the request page shows: approvals, check re-runs (audit events),
    params, metrics and training inputs on both runs."""
    for index in range(start, stop):
        for version in (live, candidate):
            Param.objects.create(run=version.run, key=f"p{index}", value=str(index))
            LatestMetric.objects.create(
                run=version.run,
                experiment_id=version.run.experiment_id,
                key=f"m{index}",
                value=index,
                timestamp=0,
                step=0,
            )
            RunInput.objects.create(run=version.run, name=f"d{index}", digest=str(index), source_type="s", source="x")
        services.rerun_checks(request=request, by=request.requester)
        pass_checks(request)
    for approver in approvers:
        services.approve(request=request, by=approver, comment="Looks right.")


def test_a_request_page_costs_the_same_with_many_approvals_events_and_facts(
    client, people, staging, artifact_root, django_assert_max_num_queries
):
    live = make_version(people["engineer"])
    go_live(people["engineer"], live, staging, "churn")
    candidate = make_version(people["engineer"], model=live.registered_model)
    request = services.submit(request=make_request(people["engineer"], candidate, staging), by=people["engineer"])
    url = reverse("deployments:request", args=[request.pk])
    client.force_login(people["approver"])

    grow(request, live, candidate, [people["approver2"]], 0, 1)
    few = queries_for(client, url)
    grow(request, live, candidate, [make_user("third", APPROVER)], 1, 15)
    with django_assert_max_num_queries(MAX_REQUEST_PAGE):
        many = queries_for(client, url)

    assert many == few
