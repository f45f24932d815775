"""Two approvers clicking the last needed approval at the same moment: the request row lock
makes them count one after the other, so there is exactly one transition and one deploy.

Runs against whatever database is configured: PostgreSQL (CI) takes the row lock with
SELECT … FOR UPDATE; SQLite serialises the two writers with its IMMEDIATE transactions."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.accounts.roles import APPROVER
from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.models import Approval
from apps.deployments.services import TransitionRefused
from apps.jobs.models import Job
from tests.conftest import make_user
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("round_", range(3))
def test_two_simultaneous_final_approvals_make_one_transition_and_one_deploy(users, artifact_root, round_, monkeypatch):
    # Jobs are recorded but not sent: a worker left running by another test must not move the
    # request on before it is inspected.
    monkeypatch.setattr("apps.jobs.services.send_job", lambda *, job_id: False)
    environment = make_environment("staging", rules=(("role", APPROVER, 1),))
    second = make_user("approver-b", APPROVER)
    request = make_request(users["engineer"], make_version(users["engineer"]), environment)
    request = services.submit(request=request, by=users["engineer"])
    pass_checks(request)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def click(user):
        try:
            barrier.wait()
            outcomes[user.username] = services.approve(request=request, by=user, comment="Ship it.")
        except Exception as exc:
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(user,)) for user in (users["approver"], second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    approvals = [o for o in outcomes.values() if isinstance(o, Approval)]
    refused = [o for o in outcomes.values() if isinstance(o, TransitionRefused)]
    assert len(approvals) == 1 and len(refused) == 1, outcomes
    assert "only pending requests" in refused[0].reason
    request.refresh_from_db()
    assert request.state == "deploying"
    assert Approval.objects.filter(request=request).count() == 1
    assert AuditEvent.objects.filter(action="deployment.request.approved", object_id=str(request.pk)).count() == 1
    assert Job.objects.filter(kind=services.DEPLOY_JOB).count() == 1


def test_the_database_refuses_two_deploys_on_one_endpoint(users, artifact_root):
    from django.db import IntegrityError

    environment = make_environment("staging")
    version = make_version(users["engineer"])
    first = make_request(users["engineer"], version, environment, state="deploying")
    second = make_request(users["engineer"], version, environment)
    second.state = "deploying"
    with pytest.raises(IntegrityError):
        second.save()
    assert first.state == "deploying"
