"""The alerting demo on a small hand-built context (not load_demo): default rules for staging and
production, and one firing drift alert on the endpoint monitoring's demo makes drift; loading
twice changes nothing."""

from __future__ import annotations

import pytest

from apps.alerting import demo
from apps.alerting.models import Alert, AlertRule
from tests.alerting.conftest import make_endpoint, make_environment
from tests.monitoring.factories import make_drift_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def context(people):
    production = make_environment("production", deployer_team=people["ops_team"])
    staging = make_environment("staging")
    drifting = make_endpoint(people["engineer"], environment=production, name="churn-propensity")
    make_endpoint(people["engineer"], environment=staging, name="quiet-one")
    make_drift_report(drifting, score=0.34, verdict="alert")
    return {"users": people, "admin": people["admin"], "environments": {"production": production, "staging": staging}}


def test_the_demo_sets_default_rules_and_opens_one_firing_drift_alert(context):
    demo.load(context)
    assert AlertRule.objects.filter(environment__name="production").count() == len(demo.PRODUCTION_DEFAULTS)
    assert AlertRule.objects.filter(environment__name="staging").count() == len(demo.STAGING_DEFAULTS)
    assert AlertRule.objects.filter(endpoint__name="churn-propensity", kind="live_metric_below").count() == 1
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.endpoint.name == "churn-propensity"
    assert alert.rule.kind == "drift_score" and alert.value == pytest.approx(0.34)


def test_loading_the_demo_twice_adds_nothing(context):
    demo.load(context)
    demo.load(context)
    assert AlertRule.objects.count() == len(demo.PRODUCTION_DEFAULTS) + len(demo.STAGING_DEFAULTS) + 1
    assert Alert.objects.count() == 1
