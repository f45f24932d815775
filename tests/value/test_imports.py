"""CSV import of cost and value entries: all or nothing, errors by line, bounded size."""

from decimal import Decimal

import pytest

from apps.value import services
from apps.value.models import CostEntry, ValueEntry
from tests.value.conftest import make_use_case

pytestmark = pytest.mark.django_db

COSTS = b"""period_start,period_end,category,amount,note
2025-01-01,2025-01-31,people,12000.00,Two analysts
2025-01-01,2025-01-31,compute,830.50,
"""


def test_costs_import_with_source_imported(users):
    use_case = make_use_case(users["owner"])
    assert services.import_entries(use_case=use_case, by=users["owner"], kind="costs", content=COSTS) == 2
    assert sorted(CostEntry.objects.values_list("amount", "source")) == [
        (Decimal("830.50"), "imported"),
        (Decimal("12000.00"), "imported"),
    ]


def test_values_import_with_method_imported_and_negative_amounts(users):
    use_case = make_use_case(users["owner"])
    content = (
        b"period_start,period_end,amount,evidence,evidence_url\n"
        b"2025-01-01,2025-01-31,8000,Finance report,https://example.org/r\n"
        b"2025-02-01,2025-02-28,-120.25,Refunds,\n"
    )
    services.import_entries(use_case=use_case, by=users["owner"], kind="values", content=content)
    assert sorted(ValueEntry.objects.values_list("amount", "method")) == [
        (Decimal("-120.25"), "imported"),
        (Decimal("8000.00"), "imported"),
    ]


def test_a_bad_row_refuses_the_whole_file_and_says_which_lines(users):
    use_case = make_use_case(users["owner"])
    content = (
        b"period_start,period_end,category,amount\n"
        b"2025-01-01,2025-01-31,people,100\n"
        b"2025-01-01,2025-01-31,snacks,100\n"
        b"2025-13-01,2025-01-31,people,100\n"
        b"2025-01-01,2025-01-31,people,-5\n"
        b"2025-01-01,2025-01-31,people,abc\n"
    )
    with pytest.raises(services.ImportRejected) as caught:
        services.import_entries(use_case=use_case, by=users["owner"], kind="costs", content=content)
    lines = [error.split(":", 1)[0] for error in caught.value.errors_by_line]
    assert lines == ["Line 3", "Line 4", "Line 5", "Line 6"]
    assert "snacks" in caught.value.errors_by_line[0]
    assert not CostEntry.objects.exists()


def test_a_missing_column_is_named(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(services.ImportRejected, match="category"):
        services.import_entries(
            use_case=use_case, by=users["owner"], kind="costs", content=b"period_start,period_end,amount\n"
        )


def test_another_currency_in_a_row_is_refused(users):
    use_case = make_use_case(users["owner"])
    content = b"period_start,period_end,category,amount,currency\n2025-01-01,2025-01-31,people,100,USD\n"
    with pytest.raises(services.ImportRejected, match="Line 2"):
        services.import_entries(use_case=use_case, by=users["owner"], kind="costs", content=content)


def test_files_over_the_limit_are_refused(users, settings):
    settings.VALUE_MAX_IMPORT_BYTES = 100
    use_case = make_use_case(users["owner"])
    with pytest.raises(services.ImportRejected, match="larger"):
        services.import_entries(use_case=use_case, by=users["owner"], kind="costs", content=COSTS * 3)


def test_files_that_are_not_utf8_are_refused(users):
    use_case = make_use_case(users["owner"])
    with pytest.raises(services.ImportRejected, match="UTF-8"):
        services.import_entries(use_case=use_case, by=users["owner"], kind="costs", content=b"\xff\xfe\x00bad")


def test_a_huge_amount_with_many_decimals_is_a_line_error_not_a_crash(users):
    use_case = make_use_case(users["owner"])
    content = b"period_start,period_end,category,amount\n2025-01-01,2025-01-31,people," + b"9" * 40 + b".001\n"
    with pytest.raises(services.ImportRejected) as caught:
        services.import_entries(use_case=use_case, by=users["owner"], kind="costs", content=content)
    assert caught.value.errors_by_line == ["Line 2: amount: Too large."]
    assert not CostEntry.objects.exists()
