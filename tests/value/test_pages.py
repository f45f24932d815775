"""The value pages: who sees what, forms through services, exports, and constant query counts."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.value.models import CostEntry, UseCase, ValueEntry
from tests.value.conftest import cost, make_model, make_use_case, value

pytestmark = pytest.mark.django_db
JAN = (date(2025, 1, 1), date(2025, 1, 31))


@pytest.fixture
def churn(users, risk_team):
    use_case = make_use_case(
        users["owner"],
        "Churn <script>reduction</script>",
        team=risk_team,
        expected_annual_value="120000",
        target_production_date=date(2025, 1, 1),
    )
    for month in range(1, 7):
        start = date(2025, month, 1)
        end = date(2025, month, 28)
        cost(use_case, start, end, "5000")
        value(use_case, start, end, str(3000 * month))
    return use_case


@pytest.fixture
def hidden(users, risk_team):
    use_case = make_use_case(users["owner"], "Secret pricing", visibility=UseCase.Visibility.PRIVATE, team=risk_team)
    cost(use_case, *JAN, "98765.43")
    return use_case


@pytest.mark.parametrize(
    "name", ["value:portfolio", "value:portfolio_csv", "value:portfolio_print", "value:home_widget"]
)
def test_anonymous_visitors_are_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_portfolio_renders_charts_and_rows_in_constant_queries(client, users, churn, django_assert_max_num_queries):
    for n in range(8):
        extra = make_use_case(users["owner"], f"Extra {n}")
        cost(extra, *JAN, "10")
    client.force_login(users["owner"])
    client.get(reverse("value:portfolio"))  # warm caches (content types, sessions)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("value:portfolio"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-plotly-src="value-funnel"' in body
    assert 'data-plotly-src="value-roi-ranking"' in body
    assert body.count('data-testid="use-case-row"') == 9
    # The name is user text: escaped in HTML, and no </script> inside the figure JSON.
    assert "<script>reduction" not in body


def test_hidden_use_cases_are_not_in_the_portfolio_page_or_its_totals(client, users, churn, hidden):
    client.force_login(users["scientist"])
    body = client.get(reverse("value:portfolio")).content.decode()
    assert "Secret pricing" not in body
    assert "98,765.43" not in body and "98765.43" not in body
    assert 'data-testid="total-cost">30,000.00 EUR' in body


def test_the_portfolio_filters_by_stage(client, users, churn):
    other = make_use_case(users["owner"], "Forecasting")
    from apps.value import services

    services.change_stage(use_case=other, by=users["owner"], stage="scoping")
    client.force_login(users["owner"])
    body = client.get(reverse("value:portfolio"), {"stage": "scoping"}).content.decode()
    assert "Forecasting" in body and "Churn" not in body


def test_bad_filters_are_ignored_not_a_500(client, users, churn):
    client.force_login(users["owner"])
    response = client.get(reverse("value:portfolio"), {"start": "yesterday", "team": "nope", "stage": "x"})
    assert response.status_code == 200


def test_the_csv_export_lists_visible_use_cases_with_their_figures(client, users, churn, hidden):
    client.force_login(users["scientist"])
    response = client.get(reverse("value:portfolio_csv"))
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["use_case"] for row in rows] == ["Churn <script>reduction</script>"]
    assert rows[0]["cost"] == "30000.00" and rows[0]["value"] == "63000.00" and rows[0]["roi"] == "1.1000"


def test_the_printable_page_has_print_css_and_the_rows(client, users, churn):
    client.force_login(users["owner"])
    body = client.get(reverse("value:portfolio_print")).content.decode()
    assert "@media print" in body
    assert 'data-testid="print-table"' in body and "30,000.00 EUR" in body


def test_the_use_case_page_shows_the_roi_chart_with_payback_and_history(
    client, users, churn, django_assert_max_num_queries
):
    client.force_login(users["owner"])
    url = reverse("value:use_case", args=[churn.slug])
    client.get(url)
    with django_assert_max_num_queries(25):
        response = client.get(url)
    body = response.content.decode()
    assert 'data-plotly-src="value-cumulative"' in body
    assert "Payback" in body
    assert 'data-testid="stage-history"' in body
    assert 'data-testid="summary-roi">110.0 %' in body


def test_the_use_case_page_takes_the_same_queries_with_many_entries(client, users, churn, django_assert_num_queries):
    client.force_login(users["owner"])
    url = reverse("value:use_case", args=[churn.slug])
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for month in range(7, 13):
        cost(churn, date(2025, month, 1), date(2025, month, 28), "100")
    with CaptureQueriesContext(connection) as after:
        client.get(url)
    assert len(after) == len(before)


def test_a_hidden_use_case_answers_404(client, users, hidden):
    client.force_login(users["scientist"])
    assert client.get(reverse("value:use_case", args=[hidden.slug])).status_code == 404
    assert client.post(reverse("value:cost_add", args=[hidden.slug]), {}).status_code == 404


def test_linked_models_show_only_what_the_viewer_may_see(client, users, churn):
    shown = make_model(users["engineer"], name="churn-model")
    secret = make_model(users["engineer"], name="secret-model", visibility="private")
    churn.registered_models.add(shown, secret)
    client.force_login(users["scientist"])
    body = client.get(reverse("value:use_case", args=[churn.slug])).content.decode()
    assert "churn-model" in body and "secret-model" not in body


def test_an_outsider_may_look_but_not_add_costs(client, users, churn):
    client.force_login(users["scientist"])
    response = client.post(
        reverse("value:cost_add", args=[churn.slug]),
        {"category": "people", "period_start": "2025-01-01", "period_end": "2025-01-31", "amount": "1"},
    )
    assert response.status_code == 403


def test_the_owner_adds_a_cost_and_a_value_through_the_forms(client, users, churn):
    client.force_login(users["owner"])
    response = client.post(
        reverse("value:cost_add", args=[churn.slug]),
        {"category": "licences", "period_start": "2025-07-01", "period_end": "2025-07-31", "amount": "99.95"},
    )
    assert response.status_code == 302
    assert CostEntry.objects.filter(use_case=churn, category="licences").exists()
    response = client.post(
        reverse("value:value_add", args=[churn.slug]),
        {"period_start": "2025-07-01", "period_end": "2025-07-31", "amount": "-10", "evidence": "Refunds"},
    )
    assert response.status_code == 302
    assert ValueEntry.objects.filter(use_case=churn, amount=-10).exists()


def test_a_value_without_evidence_comes_back_with_the_reason(client, users, churn):
    client.force_login(users["owner"])
    response = client.post(
        reverse("value:value_add", args=[churn.slug]),
        {"period_start": "2025-07-01", "period_end": "2025-07-31", "amount": "10"},
    )
    assert response.status_code == 400
    assert "measured" in response.content.decode()


def test_a_bad_import_lists_the_lines_and_imports_nothing(client, users, churn):
    client.force_login(users["owner"])
    upload = SimpleUploadedFile(
        "costs.csv", b"period_start,period_end,category,amount\n2025-01-01,2025-01-31,snacks,1\n", "text/csv"
    )
    response = client.post(reverse("value:entries_import", args=[churn.slug, "costs"]), {"file": upload})
    assert response.status_code == 400
    assert "Line 2" in response.content.decode()


def test_an_oversized_import_is_413(client, users, churn, settings):
    settings.VALUE_MAX_IMPORT_BYTES = 10
    client.force_login(users["owner"])
    upload = SimpleUploadedFile("costs.csv", b"x" * 200_000, "text/csv")
    response = client.post(reverse("value:entries_import", args=[churn.slug, "costs"]), {"file": upload})
    assert response.status_code == 413


def test_a_good_import_redirects_with_the_count(client, users, churn):
    client.force_login(users["owner"])
    upload = SimpleUploadedFile(
        "values.csv", b"period_start,period_end,amount,evidence\n2025-08-01,2025-08-31,1200,Report\n", "text/csv"
    )
    response = client.post(reverse("value:entries_import", args=[churn.slug, "values"]), {"file": upload}, follow=True)
    assert "Imported 1 value entry" in response.content.decode()


def test_a_business_owner_creates_and_edits_a_use_case(client, users):
    client.force_login(users["owner"])
    response = client.post(
        reverse("value:use_case_new"),
        {"name": "Fraud triage", "visibility": "organisation", "currency": "EUR", "kpi": "Loss rate"},
    )
    use_case = UseCase.objects.get(name="Fraud triage")
    assert response.status_code == 302 and response["Location"] == reverse("value:use_case", args=[use_case.slug])
    response = client.post(
        reverse("value:use_case_edit", args=[use_case.slug]),
        {"name": "Fraud triage", "visibility": "organisation", "currency": "EUR", "kpi": "Fraud losses"},
    )
    assert response.status_code == 302
    use_case.refresh_from_db()
    assert use_case.kpi == "Fraud losses"


def test_a_scientist_cannot_open_the_new_use_case_form(client, users):
    client.force_login(users["scientist"])
    assert client.get(reverse("value:use_case_new")).status_code == 403


def test_moving_the_stage_from_the_page(client, users, churn):
    client.force_login(users["owner"])
    response = client.post(reverse("value:use_case_stage", args=[churn.slug]), {"stage": "scoping", "note": "go"})
    assert response.status_code == 302
    churn.refresh_from_db()
    assert churn.stage == "scoping"


def test_linking_a_visible_model_from_the_page(client, users, churn):
    model = make_model(users["engineer"], name="linked-model")
    client.force_login(users["owner"])
    response = client.post(reverse("value:use_case_links", args=[churn.slug]), {"registered_models": [model.pk]})
    assert response.status_code == 302
    assert list(churn.registered_models.all()) == [model]


def test_linking_a_hidden_model_is_refused(client, users, churn):
    model = make_model(users["engineer"], name="hidden-model", visibility="private")
    client.force_login(users["owner"])
    response = client.post(reverse("value:use_case_links", args=[churn.slug]), {"registered_models": [model.pk]})
    assert response.status_code == 400
    assert not churn.registered_models.exists()


def test_the_home_widget_shows_portfolio_kpis_in_constant_queries(client, users, churn, django_assert_max_num_queries):
    for n in range(5):
        cost(make_use_case(users["owner"], f"More {n}"), *JAN, "1")
    client.force_login(users["owner"])
    client.get(reverse("value:home_widget"))
    with django_assert_max_num_queries(10):
        response = client.get(reverse("value:home_widget"))
    body = response.content.decode()
    assert 'data-testid="value-home-widget"' in body
    assert "6 use cases" in body.replace("</strong>", "").replace("<strong>", "")


def test_the_csv_export_and_print_page_take_constant_queries(client, users, churn, django_assert_max_num_queries):
    for n in range(6):
        cost(make_use_case(users["owner"], f"Also {n}"), *JAN, "5")
    client.force_login(users["owner"])
    for name in ("value:portfolio_csv", "value:portfolio_print"):
        client.get(reverse(name))
        with django_assert_max_num_queries(10):
            assert client.get(reverse(name)).status_code == 200


def test_formula_like_names_are_defused_in_the_csv(client, users):
    make_use_case(users["owner"], "=HYPERLINK(1)")
    client.force_login(users["owner"])
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("value:portfolio_csv")).content.decode())))
    assert rows[0]["use_case"] == "'=HYPERLINK(1)"


def test_linked_endpoints_load_their_open_alerts_from_the_alerting_fragment(client, users, churn):
    from apps.deployments.models import Environment
    from tests.value.conftest import make_endpoint, make_version

    model = make_model(users["engineer"], name="churn-model")
    environment = Environment.objects.create(name="production", forbid_unapproved_pii=False)
    endpoint = make_endpoint(
        users["engineer"],
        make_version(model, users["engineer"]),
        environment,
        started=churn.created_at,
        name="churn-ep",
    )
    churn.endpoints.add(endpoint)
    client.force_login(users["owner"])
    body = client.get(reverse("value:use_case", args=[churn.slug])).content.decode()
    try:
        fragment = reverse("alerting:endpoint_alerts_fragment", kwargs={"name": "churn-ep"})
    except Exception:  # alerting not installed: the page simply leaves the alerts out
        fragment = None
    if fragment:
        assert f'hx-get="{fragment}"' in body
    assert "churn-ep" in body


def test_the_audit_history_of_a_hidden_use_case_is_404(client, users, hidden):
    client.force_login(users["scientist"])
    assert client.get(reverse("audit:object_history", args=["value.usecase", hidden.pk])).status_code == 404
    client.force_login(users["owner"])
    assert client.get(reverse("audit:object_history", args=["value.usecase", hidden.pk])).status_code == 200


def test_admins_set_compute_rates_and_others_only_read_them(client, users):
    from apps.value.models import ComputeRate

    client.force_login(users["owner"])
    assert client.get(reverse("value:compute_rates")).status_code == 200
    assert (
        client.post(reverse("value:compute_rates"), {"endpoint_hour_rate": "1", "job_hour_rate": "1"}).status_code
        == 403
    )
    client.force_login(users["admin"])
    response = client.post(reverse("value:compute_rates"), {"endpoint_hour_rate": "0.35", "job_hour_rate": "0.8"})
    assert response.status_code == 302
    assert ComputeRate.objects.get(environment=None).endpoint_hour_rate == Decimal("0.3500")
    response = client.post(reverse("value:compute_rates"), {"endpoint_hour_rate": "-1", "job_hour_rate": "x"})
    assert response.status_code == 400


def test_the_new_and_edit_forms_render_for_the_owner(client, users, churn):
    client.force_login(users["owner"])
    assert 'data-testid="use-case-form"' in client.get(reverse("value:use_case_new")).content.decode()
    body = client.get(reverse("value:use_case_edit", args=[churn.slug])).content.decode()
    assert 'name="expected_annual_value"' in body and "120000" in body


def test_a_team_member_without_manage_rights_cannot_change_visibility(client, users, churn, risk_team):
    from apps.accounts import services as accounts

    accounts.add_team_member(team=risk_team, user=users["engineer"], by=users["admin"])
    client.force_login(users["engineer"])
    response = client.post(
        reverse("value:use_case_edit", args=[churn.slug]),
        {"name": churn.name, "visibility": "private", "currency": "EUR", "kpi": "Churn"},
    )
    assert response.status_code == 302
    churn.refresh_from_db()
    assert churn.visibility == "organisation" and churn.kpi == "Churn"


def test_the_use_case_page_takes_the_same_queries_with_more_links(client, users, churn):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.deployments.models import Environment
    from tests.value.conftest import make_endpoint, make_version

    environment = Environment.objects.create(name="production", forbid_unapproved_pii=False)

    def link_one(n: int) -> None:
        model = make_model(users["engineer"], name=f"linked-{n}")
        endpoint = make_endpoint(
            users["engineer"], make_version(model, users["engineer"]), environment, started=churn.created_at
        )
        churn.registered_models.add(model)
        churn.endpoints.add(endpoint)

    link_one(0)
    client.force_login(users["owner"])
    url = reverse("value:use_case", args=[churn.slug])
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for n in range(1, 6):
        link_one(n)
    with CaptureQueriesContext(connection) as after:
        body = client.get(url).content.decode()
    assert body.count('data-testid="alerts-fragment"') in (0, 6)
    assert len(after) == len(before)
