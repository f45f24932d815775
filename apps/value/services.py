"""Every write of the value app: use cases (details, stage, links, shares), cost and value
entries (entered, imported from CSV, derived), compute rates and the compute-cost accrual.
Each service checks permission, validates, runs in a transaction and records audit in it.
Refusals are `PermissionDenied` (403) or `ValidationError` (400) with a clear message."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.models import Team, User
from apps.audit import services as audit
from apps.value import permissions, roi
from apps.value.models import (
    STAGE_ORDER,
    ComputeRate,
    CostEntry,
    Stage,
    StageChange,
    UseCase,
    ValueEntry,
    organisation_currency,
)

SHARE_LEVELS: dict[str, tuple[str, ...]] = {"view": ("view_usecase",), "change": ("view_usecase", "change_usecase")}
DETAIL_FIELDS = (
    "name",
    "description",
    "sponsor",
    "kpi",
    "currency",
    "expected_annual_value",
    "value_assumptions",
    "value_per_prediction",
    "target_production_date",
    "target_payback_date",
    "risks",
)
MANAGE_FIELDS = ("owner", "team", "visibility")
MAX_AMOUNT = Decimal("99999999999999.99")
# Books kept day by day: a period far outside these is a typo, and would make every curve long.
EARLIEST, LATEST = date(1990, 1, 1), date(2100, 12, 31)


def max_import_bytes() -> int:
    return int(getattr(settings, "VALUE_MAX_IMPORT_BYTES", 1024 * 1024))


def max_import_rows() -> int:
    return int(getattr(settings, "VALUE_MAX_IMPORT_ROWS", 10_000))


# --- Use cases --------------------------------------------------------------------------------


def _snapshot(use_case: UseCase) -> dict[str, Any]:
    data = {name: getattr(use_case, name) for name in DETAIL_FIELDS}
    data.update(
        stage=use_case.stage,
        owner=use_case.owner.username if use_case.owner_id else None,
        team=use_case.team.name if use_case.team_id else None,
        visibility=use_case.visibility,
    )
    return data


# Slugs that would shadow the app's own pages (/use-cases/new/, …).
RESERVED_SLUGS = {"new", "print", "rates", "home-widget", "import-templates", "export-csv"}


def _unique_slug(name: str) -> str:
    base = slugify(name)[:180] or "use-case"
    if base in RESERVED_SLUGS:
        base = f"{base}-use-case"
    slug, n = base, 2
    while UseCase.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _check_currency_code(code: str) -> str:
    code = (code or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError({"currency": "A three-letter ISO 4217 code, e.g. EUR."})
    return code


def _check_team(by: User, team: Team | None) -> None:
    if team is not None and not permissions.is_admin(by) and team.pk not in permissions.team_ids(by):
        raise ValidationError({"team": "Give the use case to one of your own teams."})


def create_use_case(
    *,
    by: User,
    name: str,
    team: Team | None = None,
    visibility: str = UseCase.Visibility.ORGANISATION,
    stage: str = Stage.IDEA,
    owner: User | None = None,
    **details: Any,
) -> UseCase:
    """Start a use case owned by `owner` (default: its creator) in `stage` (default: idea),
    with its first stage-history row."""
    if not permissions.may_create(by):
        raise PermissionDenied("Only business owners and admins may start a use case.")
    unknown = set(details) - set(DETAIL_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if not (name or "").strip():
        raise ValidationError({"name": "Give the use case a name."})
    if stage not in STAGE_ORDER:
        raise ValidationError({"stage": f"One of {', '.join(STAGE_ORDER)}."})
    if visibility not in UseCase.Visibility.values:
        raise ValidationError({"visibility": "organisation or private."})
    _check_team(by, team)
    details["currency"] = _check_currency_code(details.get("currency") or organisation_currency())
    with transaction.atomic():
        use_case = UseCase(
            name=name.strip(),
            slug=_unique_slug(name),
            owner=owner or by,
            team=team,
            visibility=visibility,
            stage=stage,
            created_by=by,
            **details,
        )
        use_case.full_clean(exclude=["slug"])
        use_case.save()
        StageChange.objects.create(use_case=use_case, from_stage="", to_stage=stage, changed_by=by, note="Created.")
        audit.record(actor=by, action="value.use_case.created", target=use_case, after=_snapshot(use_case))
    return use_case


def _require_change(by: User, use_case: UseCase) -> None:
    if not permissions.can_view(by, use_case):
        raise PermissionDenied("You cannot see this use case.")
    if not permissions.can_change(by, use_case):
        raise PermissionDenied("Only the use case's owner, its team, admins and those it is shared with may change it.")


def _require_manage(by: User, use_case: UseCase) -> None:
    if not permissions.can_manage(by, use_case):
        raise PermissionDenied("Only the use case's owner, its team lead and admins may do this.")


def update_use_case(*, use_case: UseCase, by: User, **changes: Any) -> UseCase:
    """Change details (DETAIL_FIELDS; anyone who may change it) and owner, team or visibility
    (MANAGE_FIELDS; the owner, team lead and admins). The stage moves with `change_stage`."""
    unknown = set(changes) - set(DETAIL_FIELDS) - set(MANAGE_FIELDS)
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))} here.")
    _require_change(by, use_case)
    managed = {key: value for key, value in changes.items() if key in MANAGE_FIELDS}
    if any(getattr(use_case, key) != value for key, value in managed.items()):
        _require_manage(by, use_case)
    if "team" in managed and managed["team"] != use_case.team:
        _check_team(by, managed["team"])
    if "currency" in changes:
        changes["currency"] = _check_currency_code(changes["currency"])
        if changes["currency"] != use_case.currency and (use_case.costs.exists() or use_case.values.exists()):
            raise ValidationError(
                {"currency": "This use case already has entries in its currency; Causeway does not convert."}
            )
    with transaction.atomic():
        use_case = UseCase.objects.select_for_update(of=("self",)).select_related("owner", "team").get(pk=use_case.pk)
        before = _snapshot(use_case)
        for key, value in changes.items():
            setattr(use_case, key, value.strip() if key == "name" and isinstance(value, str) else value)
        use_case.full_clean(exclude=["slug"])
        use_case.save()
        after = _snapshot(use_case)
        if after != before:
            audit.record(actor=by, action="value.use_case.updated", target=use_case, before=before, after=after)
    return use_case


def change_stage(*, use_case: UseCase, by: User, stage: str, note: str = "") -> UseCase:
    """Move the use case to `stage` (any stage: plans change, so going back is allowed but
    recorded), keeping who, when and why in the stage history."""
    if stage not in STAGE_ORDER:
        raise ValidationError({"stage": f"One of {', '.join(STAGE_ORDER)}."})
    _require_change(by, use_case)
    with transaction.atomic():
        use_case = UseCase.objects.select_for_update().get(pk=use_case.pk)
        if use_case.stage == stage:
            raise ValidationError({"stage": f"The use case is already in {Stage(stage).label.lower()}."})
        previous = use_case.stage
        use_case.stage = stage
        use_case.save(update_fields=["stage", "updated_at"])
        StageChange.objects.create(
            use_case=use_case, from_stage=previous, to_stage=stage, changed_by=by, note=(note or "")[:2000]
        )
        audit.record(
            actor=by,
            action="value.use_case.stage_changed",
            target=use_case,
            before={"stage": previous},
            after={"stage": stage, "note": note},
        )
    return use_case


LINK_FIELDS = ("datasets", "experiments", "registered_models", "endpoints")


def set_links(*, use_case: UseCase, by: User, **links: list) -> UseCase:
    """Replace the use case's links of the kinds given (datasets, experiments,
    registered_models, endpoints). Only objects `by` may see can be linked; links to objects
    they cannot see are kept as they are (they did not know them)."""
    from apps.value import selectors

    unknown = set(links) - set(LINK_FIELDS)
    if unknown:
        raise ValidationError(f"Cannot link {', '.join(sorted(unknown))}.")
    _require_change(by, use_case)
    choices = selectors.linkable_choices(by)
    before, after = {}, {}
    with transaction.atomic():
        for kind, wanted in links.items():
            wanted_ids = {getattr(item, "pk", item) for item in wanted}
            visible_ids = set(choices[kind].filter(pk__in=wanted_ids).values_list("pk", flat=True))
            hidden = wanted_ids - visible_ids
            if hidden:
                raise ValidationError({kind: "Link only objects you can see."})
            relation = getattr(use_case, kind)
            current = set(relation.values_list("pk", flat=True))
            seen_current = set(choices[kind].filter(pk__in=current).values_list("pk", flat=True))
            new = (current - seen_current) | visible_ids
            if new != current:
                relation.set(new)
                before[kind], after[kind] = sorted(current), sorted(new)
        if after:
            audit.record(actor=by, action="value.use_case.links_changed", target=use_case, before=before, after=after)
    return use_case


def share_use_case(*, use_case: UseCase, grantee: User | Team, level: str, by: User, grant: bool = True) -> None:
    """Grant (or take back) view or change on the use case to a user or a team (guardian).
    Granting change grants view too; taking back view takes change with it."""
    if level not in SHARE_LEVELS:
        raise ValidationError({"level": f"One of {', '.join(SHARE_LEVELS)}."})
    if not isinstance(grantee, User | Team):
        raise ValidationError({"grantee": "Share with a user or a team."})
    _require_manage(by, use_case)
    target = grantee.group if isinstance(grantee, Team) else grantee
    codenames = (
        SHARE_LEVELS[level]
        if grant
        else (("change_usecase",) if level == "change" else ("view_usecase", "change_usecase"))
    )
    with transaction.atomic():
        for codename in codenames:
            (assign_perm if grant else remove_perm)(f"value.{codename}", target, use_case)
        audit.record(
            actor=by,
            action="value.use_case.shared" if grant else "value.use_case.unshared",
            target=use_case,
            after={
                "level": level,
                "permissions": list(codenames),
                "user": grantee.username if isinstance(grantee, User) else None,
                "team": grantee.name if isinstance(grantee, Team) else None,
            },
        )


# --- Money ------------------------------------------------------------------------------------


def parse_amount(raw: Any, *, field: str = "amount", allow_negative: bool = False) -> Decimal:
    """A money amount from text or a number: finite, at most 2 decimal places, within range."""
    if isinstance(raw, float):
        raw = repr(raw)  # never trust binary floats with money: go through their text
    try:
        amount = Decimal(str(raw).strip().replace(",", "")) if not isinstance(raw, Decimal) else raw
    except (InvalidOperation, ValueError):
        raise ValidationError({field: f"{raw!r} is not an amount."}) from None
    if not amount.is_finite():
        raise ValidationError({field: "Give a finite amount."})
    # Range first: quantizing a huge amount raises InvalidOperation (a 500, not a 400).
    if abs(amount) > MAX_AMOUNT:
        raise ValidationError({field: "Too large."})
    if amount.as_tuple().exponent < -2 and amount != amount.quantize(roi.CENT):
        raise ValidationError({field: "At most two decimal places."})
    if amount < 0 and not allow_negative:
        raise ValidationError({field: "A cost cannot be negative (enter a refund as negative value instead)."})
    return amount.quantize(roi.CENT)


def _check_period(start: date, end: date) -> None:
    if start is None or end is None:
        raise ValidationError({"period_start": "Give the period's first and last day."})
    if end < start:
        raise ValidationError({"period_end": "The period ends before it starts."})
    if (end - start).days > 366 * 10:
        raise ValidationError({"period_end": "A period of more than ten years is surely a typo."})
    if start < EARLIEST or end > LATEST:
        raise ValidationError({"period_start": f"Periods lie between {EARLIEST} and {LATEST}."})


def _entry_currency(use_case: UseCase, currency: str | None) -> str:
    code = _check_currency_code(currency) if currency else use_case.currency
    if code != use_case.currency:
        raise ValidationError(
            {"currency": f"This use case is kept in {use_case.currency}; Causeway does not convert {code}."}
        )
    return code


def add_cost(
    *,
    use_case: UseCase,
    by: User,
    category: str,
    period_start: date,
    period_end: date,
    amount: Any,
    currency: str | None = None,
    note: str = "",
    source: str = CostEntry.Source.ENTERED,
) -> CostEntry:
    """Record a cost over a period (both days included)."""
    _require_change(by, use_case)
    if category not in CostEntry.Category.values:
        raise ValidationError({"category": f"One of {', '.join(CostEntry.Category.values)}."})
    if source not in (CostEntry.Source.ENTERED, CostEntry.Source.IMPORTED):
        raise ValidationError({"source": "Accrued costs are written by the accrual only."})
    _check_period(period_start, period_end)
    entry = CostEntry(
        use_case=use_case,
        category=category,
        period_start=period_start,
        period_end=period_end,
        amount=parse_amount(amount),
        currency=_entry_currency(use_case, currency),
        note=(note or "")[:5000],
        source=source,
        created_by=by,
    )
    with transaction.atomic():
        entry.save()
        audit.record(actor=by, action="value.cost.added", target=use_case, after=_entry_audit(entry))
    return entry


def add_value(
    *,
    use_case: UseCase,
    by: User,
    period_start: date,
    period_end: date,
    amount: Any,
    evidence: str = "",
    evidence_url: str = "",
    currency: str | None = None,
    method: str = ValueEntry.Method.ENTERED,
    note: str = "",
) -> ValueEntry:
    """Record realised value over a period. Entered value needs evidence (what was measured,
    or a link to it); value may be negative (the model lost money)."""
    _require_change(by, use_case)
    if method not in (ValueEntry.Method.ENTERED, ValueEntry.Method.IMPORTED, ValueEntry.Method.DERIVED_KPI_UPLIFT):
        raise ValidationError({"method": "Value derived from predictions is written by the accrual only."})
    if method == ValueEntry.Method.ENTERED and not (evidence or "").strip() and not (evidence_url or "").strip():
        raise ValidationError({"evidence": "Say how the value was measured, or link the evidence."})
    _check_period(period_start, period_end)
    entry = ValueEntry(
        use_case=use_case,
        period_start=period_start,
        period_end=period_end,
        amount=parse_amount(amount, allow_negative=True),
        currency=_entry_currency(use_case, currency),
        method=method,
        evidence=(evidence or "")[:10000],
        evidence_url=(evidence_url or "").strip(),
        note=(note or "")[:5000],
        created_by=by,
    )
    entry.full_clean(exclude=["use_case", "created_by"])
    with transaction.atomic():
        entry.save()
        audit.record(actor=by, action="value.value.added", target=use_case, after=_entry_audit(entry))
    return entry


def record_kpi_uplift(
    *,
    use_case: UseCase,
    by: User,
    period_start: date,
    period_end: date,
    baseline_rate: Any,
    treatment_rate: Any,
    volume: int,
    value_per_unit: Any,
    comparison: str,
    evidence_url: str = "",
) -> ValueEntry:
    """Value derived from an A/B comparison of a KPI: (treatment rate − baseline rate) × volume
    × value per unit (e.g. churn rate 12 % without the model, 10.5 % with it, over 40,000
    customers worth 300 each). The arithmetic is written into the entry's evidence."""
    try:
        baseline, treatment = Decimal(str(baseline_rate)), Decimal(str(treatment_rate))
        unit_value = Decimal(str(value_per_unit))
    except InvalidOperation:
        raise ValidationError("The rates and the value per unit must be numbers.") from None
    if not (baseline.is_finite() and treatment.is_finite() and unit_value.is_finite()):
        raise ValidationError("The rates and the value per unit must be finite.")
    if not isinstance(volume, int) or volume < 0:
        raise ValidationError({"volume": "A whole number of units, zero or more."})
    if not (comparison or "").strip():
        raise ValidationError({"comparison": "Name the A/B comparison the uplift comes from."})
    amount = roi.money((treatment - baseline) * volume * unit_value)
    evidence = f"KPI uplift from {comparison.strip()}: ({treatment} − {baseline}) × {volume} × {unit_value} = {amount}."
    return add_value(
        use_case=use_case,
        by=by,
        period_start=period_start,
        period_end=period_end,
        amount=amount,
        evidence=evidence,
        evidence_url=evidence_url,
        method=ValueEntry.Method.DERIVED_KPI_UPLIFT,
    )


def delete_entry(*, entry: CostEntry | ValueEntry, by: User) -> None:
    """Remove a cost or value entry (accrued and derived ones come back with the next accrual
    while their source is still linked)."""
    use_case = entry.use_case
    _require_change(by, use_case)
    kind = "cost" if isinstance(entry, CostEntry) else "value"
    with transaction.atomic():
        before = _entry_audit(entry)
        entry.delete()
        audit.record(actor=by, action=f"value.{kind}.deleted", target=use_case, before=before)


def _entry_audit(entry: CostEntry | ValueEntry) -> dict[str, Any]:
    data = {
        "id": entry.pk,
        "period_start": entry.period_start,
        "period_end": entry.period_end,
        "amount": entry.amount,
        "currency": entry.currency,
    }
    if isinstance(entry, CostEntry):
        data.update(category=entry.category, source=entry.source)
    else:
        data.update(method=entry.method, evidence=entry.evidence[:500], evidence_url=entry.evidence_url)
    return data


# --- CSV import -------------------------------------------------------------------------------

COST_COLUMNS = ("period_start", "period_end", "category", "amount")
VALUE_COLUMNS = ("period_start", "period_end", "amount")


class ImportRejected(ValidationError):
    """The whole file was refused; `.errors_by_line` lists what is wrong, line by line."""

    def __init__(self, errors: list[str]):
        self.errors_by_line = errors
        super().__init__(errors)


def _parse_date(raw: str, field: str) -> date:
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        raise ValidationError({field: f"{raw!r} is not a date (YYYY-MM-DD)."}) from None


def _read_csv(content: bytes, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    if len(content) > max_import_bytes():
        raise ImportRejected([f"The file is larger than {max_import_bytes() // 1024} KiB."])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected(["The file is not UTF-8 text."]) from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise ImportRejected([f"Line 1: {exc}"]) from None
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportRejected([f"Line 1: missing column(s) {', '.join(missing)} (have {', '.join(header) or 'none'})."])
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            if len(rows) >= max_import_rows():
                raise ImportRejected([f"More than {max_import_rows()} rows: split the file."])
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            rows.append((reader.line_num, {k: (v or "") if isinstance(v, str) else "" for k, v in row.items() if k}))
    except csv.Error as exc:
        raise ImportRejected([f"Line {reader.line_num}: {exc}"]) from None
    if not rows:
        raise ImportRejected(["The file has no rows."])
    return rows


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)


def import_entries(*, use_case: UseCase, by: User, kind: str, content: bytes) -> int:
    """Import cost (`kind="costs"`: period_start, period_end, category, amount[, currency,
    note]) or value (`kind="values"`: period_start, period_end, amount[, currency, evidence,
    evidence_url, note]) entries from CSV. All or nothing: any bad row refuses the whole file,
    and every bad row is reported with its line number. Returns the number of rows imported."""
    if kind not in ("costs", "values"):
        raise ValidationError({"kind": "costs or values."})
    _require_change(by, use_case)
    rows = _read_csv(content, COST_COLUMNS if kind == "costs" else VALUE_COLUMNS)
    entries: list[CostEntry | ValueEntry] = []
    errors: list[str] = []
    for line, row in rows:
        try:
            start = _parse_date(row.get("period_start", ""), "period_start")
            end = _parse_date(row.get("period_end", ""), "period_end")
            _check_period(start, end)
            currency = _entry_currency(use_case, row.get("currency", "").strip() or None)
            if kind == "costs":
                category = row.get("category", "").strip().lower()
                if category not in CostEntry.Category.values:
                    raise ValidationError(
                        {"category": f"{category!r} is not one of {', '.join(CostEntry.Category.values)}."}
                    )
                entries.append(
                    CostEntry(
                        use_case=use_case,
                        category=category,
                        period_start=start,
                        period_end=end,
                        amount=parse_amount(row.get("amount", "")),
                        currency=currency,
                        note=row.get("note", "")[:5000],
                        source=CostEntry.Source.IMPORTED,
                        created_by=by,
                    )
                )
            else:
                entry = ValueEntry(
                    use_case=use_case,
                    period_start=start,
                    period_end=end,
                    amount=parse_amount(row.get("amount", ""), allow_negative=True),
                    currency=currency,
                    method=ValueEntry.Method.IMPORTED,
                    evidence=row.get("evidence", "")[:10000],
                    evidence_url=row.get("evidence_url", "").strip(),
                    note=row.get("note", "")[:5000],
                    created_by=by,
                )
                entry.full_clean(exclude=["use_case", "created_by"])
                entries.append(entry)
        except ValidationError as exc:
            errors.append(f"Line {line}: {_messages(exc)}")
    if errors:
        raise ImportRejected(errors)
    model = CostEntry if kind == "costs" else ValueEntry
    with transaction.atomic():
        model.objects.bulk_create(entries)
        audit.record(
            actor=by,
            action=f"value.{kind}.imported",
            target=use_case,
            after={"rows": len(entries), "total": sum((entry.amount for entry in entries), Decimal("0"))},
        )
    return len(entries)


# --- Compute rates and accrual ----------------------------------------------------------------


def set_compute_rate(
    *, by: User, environment=None, endpoint_hour_rate: Any, job_hour_rate: Any, currency: str | None = None
) -> ComputeRate:
    """Set what an hour costs in `environment` (None: the default, for jobs outside deployments
    and environments without a rate). Platform admins only."""
    if not permissions.is_admin(by):
        raise PermissionDenied("Only platform admins set compute rates.")
    endpoint_rate = _parse_rate(endpoint_hour_rate, "endpoint_hour_rate")
    job_rate = _parse_rate(job_hour_rate, "job_hour_rate")
    code = _check_currency_code(currency or organisation_currency())
    with transaction.atomic():
        rate = ComputeRate.objects.select_for_update(of=("self",)).filter(environment=environment).first()
        before = (
            None
            if rate is None
            else {"endpoint": rate.endpoint_hour_rate, "job": rate.job_hour_rate, "currency": rate.currency}
        )
        rate = rate or ComputeRate(environment=environment)
        rate.endpoint_hour_rate, rate.job_hour_rate, rate.currency = endpoint_rate, job_rate, code
        rate.save()
        audit.record(
            actor=by,
            action="value.compute_rate.set",
            target=rate,
            before=before,
            after={
                "environment": str(environment or "default"),
                "endpoint": endpoint_rate,
                "job": job_rate,
                "currency": code,
            },
        )
    return rate


def _parse_rate(raw: Any, field: str) -> Decimal:
    try:
        rate = Decimal(str(raw))
    except InvalidOperation:
        raise ValidationError({field: f"{raw!r} is not a number."}) from None
    if not rate.is_finite() or rate < 0 or rate > Decimal("99999999"):
        raise ValidationError({field: "A rate per hour, zero or more."})
    return rate.quantize(Decimal("0.0001"))


@dataclass
class AccrualResult:
    days: int
    cost_entries: int
    value_entries: int
    skipped: list[str]

    def as_dict(self) -> dict:
        return {
            "days": self.days,
            "cost_entries": self.cost_entries,
            "value_entries": self.value_entries,
            "skipped": self.skipped,
        }


def accrue(*, start: date, end: date, now: datetime | None = None) -> AccrualResult:
    """Accrue compute cost (job run time and endpoint hours at the environments' rates) and
    value derived from predictions served, one entry per use case and day in [start, end]
    (never past today). Idempotent: each day's entry is keyed (`compute:<day>`,
    `predictions:<day>`) and rewritten with what the platform says now, so running it twice,
    or again after a late job finishes, gives the same books."""
    from apps.value import accrual

    now = now or timezone.now()
    end = min(end, timezone.localdate(now))
    if end < start:
        return AccrualResult(days=0, cost_entries=0, value_entries=0, skipped=[])
    costs, skipped = accrual.compute_costs(start=start, end=end, now=now)
    values, value_skipped = accrual.prediction_values(start=start, end=end)
    skipped += value_skipped
    written_costs = written_values = 0
    with transaction.atomic():
        written_costs = _write_accrued(CostEntry, costs, start, end, prefix="compute")
        written_values = _write_accrued(ValueEntry, values, start, end, prefix="predictions")
        if written_costs or written_values:
            audit.record(
                actor=None,
                action="value.accrued",
                object_type="value.accrual",
                object_id=f"{start}..{end}",
                object_label=f"Accrual {start} to {end}",
                after={"cost_entries": written_costs, "value_entries": written_values, "skipped": skipped},
            )
    return AccrualResult(
        days=(end - start).days + 1, cost_entries=written_costs, value_entries=written_values, skipped=skipped
    )


def _write_accrued(model, amounts: dict, start: date, end: date, *, prefix: str) -> int:
    """Upsert the keyed rows of [start, end]; rows of those days no longer earned are removed.
    Returns how many rows were created, changed or removed."""
    keys = [f"{prefix}:{start + timedelta(days=n)}" for n in range((end - start).days + 1)]
    existing = {
        (row.use_case_id, row.accrual_key): row
        for row in model.objects.filter(accrual_key__in=keys).select_related("use_case")
    }
    touched = 0
    for (use_case, day), (amount, note) in amounts.items():
        key = f"{prefix}:{day}"
        amount = roi.money(amount)
        row = existing.pop((use_case.pk, key), None)
        if row is None:
            if amount == 0:
                continue
            fields = {"category": CostEntry.Category.COMPUTE, "source": CostEntry.Source.ACCRUED}
            if model is ValueEntry:
                fields = {"method": ValueEntry.Method.DERIVED_PREDICTIONS, "evidence": note}
            model.objects.create(
                use_case=use_case,
                period_start=day,
                period_end=day,
                amount=amount,
                currency=use_case.currency,
                accrual_key=key,
                note=note if model is CostEntry else "",
                **fields,
            )
            touched += 1
        elif row.amount != amount:
            row.amount = amount
            if model is ValueEntry:
                row.evidence = note
            else:
                row.note = note
            row.save()
            touched += 1
    for row in existing.values():
        row.delete()
        touched += 1
    return touched


def accrue_recent(*, now: datetime | None = None) -> AccrualResult:
    """What the hourly beat task runs: yesterday and today (late finishers are caught)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    lookback = int(getattr(settings, "VALUE_ACCRUAL_LOOKBACK_DAYS", 2))
    return accrue(start=today - timedelta(days=max(1, lookback) - 1), end=today, now=now)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    return start, start + timedelta(days=1)
