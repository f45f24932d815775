"""Use cases, entries, stage history, links and shares through the services."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.audit.models import AuditEvent
from apps.value import permissions, selectors, services
from apps.value.models import CostEntry, StageChange, UseCase, ValueEntry
from tests.catalog.factories import make_dataset
from tests.value.conftest import make_model, make_use_case

pytestmark = pytest.mark.django_db


def test_a_business_owner_creates_a_use_case_with_its_first_stage_row_and_audit(users):
    use_case = make_use_case(users["owner"], "Churn reduction", kpi="Monthly churn rate")
    assert use_case.owner == users["owner"]
    assert use_case.currency == "EUR"
    assert [(row.from_stage, row.to_stage) for row in use_case.stage_changes.all()] == [("", "idea")]
    assert AuditEvent.objects.filter(action="value.use_case.created", object_id=str(use_case.pk)).exists()


def test_a_scientist_may_not_start_a_use_case(users):
    with pytest.raises(PermissionDenied):
        services.create_use_case(by=users["scientist"], name="Nope")


def test_a_use_case_called_new_does_not_shadow_the_new_page(users):
    assert make_use_case(users["owner"], "New").slug == "new-use-case"


def test_the_organisation_currency_is_a_setting(users, settings):
    settings.CAUSEWAY_CURRENCY = "GBP"
    assert make_use_case(users["owner"]).currency == "GBP"


def test_stage_changes_record_who_when_and_why(users):
    use_case = make_use_case(users["owner"])
    services.change_stage(use_case=use_case, by=users["owner"], stage="scoping", note="Sponsor agreed")
    rows = list(StageChange.objects.filter(use_case=use_case).order_by("id"))
    assert [(row.from_stage, row.to_stage, row.changed_by) for row in rows][-1] == ("idea", "scoping", users["owner"])
    assert rows[-1].note == "Sponsor agreed"


def test_moving_to_the_same_stage_is_refused(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(ValidationError):
        services.change_stage(use_case=use_case, by=users["owner"], stage="idea")


def test_an_outsider_cannot_change_a_use_case_they_can_see(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(PermissionDenied):
        services.change_stage(use_case=use_case, by=users["scientist"], stage="scoping")


def test_costs_are_decimal_and_never_negative(users):
    use_case = make_use_case(users["owner"])
    entry = services.add_cost(
        use_case=use_case,
        by=users["owner"],
        category="people",
        period_start=date(2025, 1, 1),
        period_end=date(2025, 1, 31),
        amount="1234.50",
    )
    assert entry.amount == Decimal("1234.50")
    with pytest.raises(ValidationError):
        services.add_cost(
            use_case=use_case,
            by=users["owner"],
            category="people",
            period_start=date(2025, 1, 1),
            period_end=date(2025, 1, 31),
            amount="-1",
        )


def test_amounts_with_more_than_two_decimals_are_refused(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(ValidationError, match="two decimal"):
        services.add_cost(
            use_case=use_case,
            by=users["owner"],
            category="data",
            period_start=date(2025, 1, 1),
            period_end=date(2025, 1, 1),
            amount="0.001",
        )


def test_a_period_that_ends_before_it_starts_is_refused(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(ValidationError):
        services.add_cost(
            use_case=use_case,
            by=users["owner"],
            category="data",
            period_start=date(2025, 2, 1),
            period_end=date(2025, 1, 1),
            amount="1",
        )


def test_an_entry_in_another_currency_is_refused(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(ValidationError, match="does not convert"):
        services.add_cost(
            use_case=use_case,
            by=users["owner"],
            category="data",
            period_start=date(2025, 1, 1),
            period_end=date(2025, 1, 1),
            amount="10",
            currency="USD",
        )


def test_entered_value_needs_evidence_and_may_be_negative(users):
    use_case = make_use_case(users["owner"])
    period = {"period_start": date(2025, 1, 1), "period_end": date(2025, 1, 31)}
    with pytest.raises(ValidationError, match="measured"):
        services.add_value(use_case=use_case, by=users["owner"], amount="100", **period)
    entry = services.add_value(
        use_case=use_case, by=users["owner"], amount="-250.00", evidence="Refunds after wrong offers", **period
    )
    assert entry.amount == Decimal("-250.00")
    assert entry.method == ValueEntry.Method.ENTERED


def test_kpi_uplift_value_writes_its_arithmetic_as_evidence(users):
    use_case = make_use_case(users["owner"])
    entry = services.record_kpi_uplift(
        use_case=use_case,
        by=users["owner"],
        period_start=date(2025, 1, 1),
        period_end=date(2025, 3, 31),
        baseline_rate="0.120",
        treatment_rate="0.105",
        volume=40000,
        value_per_unit="-300",
        comparison="Q1 retention A/B test",
    )
    # 1.5 points fewer churners × 40,000 customers × 300 each.
    assert entry.amount == Decimal("180000.00")
    assert entry.method == ValueEntry.Method.DERIVED_KPI_UPLIFT
    assert "Q1 retention A/B test" in entry.evidence


def test_the_currency_cannot_change_once_there_are_entries(users):
    use_case = make_use_case(users["owner"])
    services.add_cost(
        use_case=use_case,
        by=users["owner"],
        category="data",
        period_start=date(2025, 1, 1),
        period_end=date(2025, 1, 1),
        amount="10",
    )
    with pytest.raises(ValidationError):
        services.update_use_case(use_case=use_case, by=users["owner"], currency="USD")


def test_only_objects_the_user_may_see_can_be_linked(users):
    use_case = make_use_case(users["owner"])
    hidden = make_model(users["scientist"], visibility="private")
    shown = make_model(users["scientist"])
    with pytest.raises(ValidationError):
        services.set_links(use_case=use_case, by=users["owner"], registered_models=[hidden])
    services.set_links(use_case=use_case, by=users["owner"], registered_models=[shown])
    assert list(use_case.registered_models.all()) == [shown]


def test_links_to_objects_the_editor_cannot_see_are_kept(users):
    use_case = make_use_case(users["owner"])
    private = make_dataset(users["scientist"], "Private data", visibility="private", profiled=False)
    use_case.datasets.add(private)
    public = make_dataset(users["scientist"], "Public data", profiled=False)
    services.set_links(use_case=use_case, by=users["owner"], datasets=[public])
    assert set(use_case.datasets.all()) == {private, public}


def test_sharing_with_a_user_lets_them_see_then_change_then_not(users):
    use_case = make_use_case(users["owner"], visibility=UseCase.Visibility.PRIVATE)
    stranger = users["scientist"]
    assert not selectors.visible_use_cases(stranger).exists()
    services.share_use_case(use_case=use_case, grantee=stranger, level="view", by=users["owner"])
    stranger = type(stranger).objects.get(pk=stranger.pk)
    assert list(selectors.visible_use_cases(stranger)) == [use_case]
    assert not permissions.can_change(stranger, use_case)
    services.share_use_case(use_case=use_case, grantee=stranger, level="change", by=users["owner"])
    stranger = type(stranger).objects.get(pk=stranger.pk)
    assert permissions.can_change(stranger, use_case)
    services.share_use_case(use_case=use_case, grantee=stranger, level="view", by=users["owner"], grant=False)
    stranger = type(stranger).objects.get(pk=stranger.pk)
    assert not selectors.visible_use_cases(stranger).exists()
    assert AuditEvent.objects.filter(action="value.use_case.unshared").count() == 1


def test_sharing_with_a_team_reaches_its_members(users, risk_team):
    from apps.accounts import services as accounts

    use_case = make_use_case(users["admin"], visibility=UseCase.Visibility.PRIVATE)
    accounts.add_team_member(team=risk_team, user=users["scientist"], by=users["admin"])
    services.share_use_case(use_case=use_case, grantee=risk_team, level="view", by=users["admin"])
    assert list(selectors.visible_use_cases(users["scientist"])) == [use_case]


def test_only_managers_may_share(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(PermissionDenied):
        services.share_use_case(use_case=use_case, grantee=users["ops"], level="view", by=users["scientist"])


def test_deleting_an_entry_is_audited(users):
    use_case = make_use_case(users["owner"])
    entry = services.add_cost(
        use_case=use_case,
        by=users["owner"],
        category="data",
        period_start=date(2025, 1, 1),
        period_end=date(2025, 1, 1),
        amount="10",
    )
    services.delete_entry(entry=entry, by=users["owner"])
    assert not CostEntry.objects.exists()
    assert AuditEvent.objects.filter(action="value.cost.deleted").exists()
