"""Demo use cases, owned by the business owner `owner`: one in every stage, with a year of
monthly cost and value history that tells a story — churn reduction went live seven months ago
and paid back in its sixth month; card fraud triage is in validation with a pilot's first value and not paid
back yet; the PD model is still being built; branch staffing ran, lost money and was retired;
next-best-offer is being scoped; merchant risk is an idea. Linked to the demo datasets,
experiments, models and the live churn endpoint. Compute rates are set per environment so the
hourly accrual costs jobs and endpoint hours from here on.

Everything goes through the services (so the audit trail reads as it would in use); stage
history is then back-dated to the months it happened. Idempotent: nothing is added when the
demo use cases exist.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time
from decimal import Decimal

from django.utils import timezone

from apps.accounts.models import Team
from apps.value import selectors, services
from apps.value.models import ComputeRate, StageChange, UseCase

D = Decimal


def _months(count: int = 12) -> list[tuple[date, date]]:
    """The last `count` whole months, oldest first (the current month is not over yet)."""
    today = timezone.localdate()
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        months.append((date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])))
    return list(reversed(months))


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(9, 30)))


def load(context: dict) -> None:
    users, admin = context["users"], context["admin"]
    _rates(admin, context.get("environments", {}))
    if UseCase.objects.filter(slug="customer-churn-reduction").exists():
        return
    owner = users["owner"]
    team = Team.objects.filter(name="Risk Analytics").first()
    months = _months()
    visible = selectors.linkable_choices(owner)

    def links(*, datasets=(), experiments=(), models=(), endpoints=()) -> dict:
        return {
            "datasets": list(visible["datasets"].filter(name__in=datasets)),
            "experiments": list(visible["experiments"].filter(name__in=experiments)),
            "registered_models": list(visible["registered_models"].filter(name__in=models)),
            "endpoints": list(visible["endpoints"].filter(name__in=endpoints)),
        }

    # 1. Churn: live for seven months, paid back in its sixth month of production.
    churn = _use_case(
        owner,
        team,
        name="Customer churn reduction",
        description=(
            "Score every retail customer monthly for the risk of leaving, and give the retention team "
            "a ranked list to call before renewal."
        ),
        sponsor="Head of Retail Banking",
        kpi="Monthly churn rate of retail customers",
        expected_annual_value=D("420000"),
        value_assumptions=(
            "- 40,000 customers up for renewal a year, 12 % churn without the model\n"
            "- the list saves 1.5 points of churn (A/B pilot), 300 EUR margin a customer a year\n"
            "- value counted from go-live, net of the retention offers"
        ),
        value_per_prediction=D("0.04"),
        target_production_date=months[5][0],
        target_payback_date=months[11][1],
        risks="Offers to customers who would have stayed anyway; drift after pricing changes.",
        links=links(
            datasets=("Customer master", "Customer segments", "Customer churn labels", "Campaign responses"),
            experiments=("Customer churn propensity",),
            models=("churn-propensity",),
            endpoints=("churn-propensity",),
        ),
        stages=[
            ("scoping", 0, "Sponsor signed the business case."),
            ("development", 1, "Data access approved."),
            ("validation", 3, "Champion picked: best hold-out AUC."),
            ("production", 5, "Two approvals; live."),
        ],
        months=months,
    )
    people = [18000, 18000, 18000, 16000, 14000, 6000, 6000, 5000, 5000, 5000, 5000, 5000]
    compute = [600, 900, 1400, 1500, 1200, 1100, 1100, 1150, 1200, 1200, 1250, 1300]
    value = [0, 0, 0, 0, 0, 12000, 22000, 30000, 34000, 36000, 38000, 39000]
    _costs(churn, owner, months, people=people, data=[2000] * 12, infrastructure=[0] * 5 + [900] * 7)
    _import_compute(churn, owner, months, compute)
    _values(churn, owner, months, value, "Retention team's saved-customer report, reconciled by Finance.")
    services.record_kpi_uplift(
        use_case=churn,
        by=owner,
        period_start=months[4][0],
        period_end=months[4][1],
        baseline_rate="0.120",
        treatment_rate="0.118",
        volume=3500,
        value_per_unit="-300",
        comparison="pre-launch A/B pilot on 7,000 renewals (half called from the model's list)",
    )

    # 2. Card fraud triage: in validation, a staging pilot brings its first value; not paid back.
    fraud = _use_case(
        owner,
        team,
        name="Card fraud triage",
        description="Rank the card-fraud review queue so analysts see the likeliest fraud first.",
        sponsor="Chief Risk Officer",
        kpi="Fraud losses per million EUR of card spend",
        expected_annual_value=D("300000"),
        value_assumptions="Analysts clear the queue 30 % faster; losses caught a day earlier on average.",
        target_production_date=months[11][1],
        risks="False positives delay genuine payments; the model must not key on protected attributes.",
        visibility=UseCase.Visibility.PRIVATE,
        links=links(
            datasets=("Card transactions", "Merchant directory", "Fraud alerts"),
            experiments=("Card fraud detection",),
            models=("card-fraud",),
        ),
        stages=[
            ("scoping", 2, "Fraud operations on board."),
            ("development", 3, "Labels from the alerts table."),
            ("validation", 9, "Staging pilot on a copy of the review queue."),
        ],
        months=months,
    )
    _costs(
        fraud,
        owner,
        months,
        people=[0, 0, 4000, 15000, 15000, 15000, 15000, 15000, 15000, 12000, 12000, 12000],
        data=[0, 0, 0, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500],
        licences=[0] * 9 + [2500] * 3,
    )
    _import_compute(fraud, owner, months, [0, 0, 0, 300, 800, 1200, 1800, 2100, 1900, 1500, 1400, 1400])
    _values(fraud, owner, months, [0] * 10 + [2500, 4200], "Pilot: losses avoided on the staging queue, Fraud Ops log.")

    # 3. Probability of default: in development, costs only so far.
    pd = _use_case(
        owner,
        team,
        name="Probability of default for underwriting",
        description="A calibrated PD for small-business loans, one input among several for underwriters.",
        sponsor="Head of Credit",
        kpi="Default rate of approved small-business loans",
        expected_annual_value=D("250000"),
        value_assumptions="0.4 points fewer defaults on 60 M EUR of new lending a year, after provisions.",
        target_production_date=date(months[11][1].year + 1, months[11][1].month, 1),
        risks="Adverse decisions: calibration and fairness review by Model Risk before any use.",
        links=links(
            datasets=("Loan applications", "Loan repayments", "Credit bureau scores", "Default training set"),
            experiments=("Probability of default (PD) model",),
            models=("probability-of-default",),
        ),
        stages=[("scoping", 5, "Credit committee asked for a PD."), ("development", 6, "Training set built.")],
        months=months,
    )
    _costs(pd, owner, months, people=[0] * 6 + [14000] * 6, data=[0] * 6 + [3000] * 6)
    _import_compute(pd, owner, months, [0] * 6 + [400, 700, 900, 1100, 900, 1000])

    # 4. Branch staffing: ran, lost money when footfall patterns changed, retired.
    branches = _use_case(
        owner,
        None,
        name="Branch staffing forecast",
        description="Forecast branch footfall to plan staff rotas a fortnight ahead.",
        sponsor="Head of Branch Network",
        kpi="Overtime hours per branch",
        expected_annual_value=D("90000"),
        value_assumptions="10 % less overtime across 40 branches.",
        target_production_date=months[0][0],
        risks="Footfall shifts when branches change opening hours.",
        links=links(datasets=("Branch locations", "Staff rota")),
        stages=[
            ("scoping", 0, ""),
            ("development", 0, ""),
            ("validation", 1, ""),
            ("production", 2, "Rotas from the forecast."),
            ("retired", 9, "Footfall moved online; forecasts overstaffed branches. Switched off."),
        ],
        months=months,
    )
    _costs(
        branches,
        owner,
        months[:10],
        people=[6000, 6000, 3000, 2500, 2500, 2500, 2500, 2500, 2500, 1000],
        infrastructure=[0, 0, 400, 400, 400, 400, 400, 400, 400, 400],
    )
    _values(
        branches,
        owner,
        months[:10],
        [0, 0, 3000, 5000, 4500, 4000, 2500, 1000, -800, -1500],
        "Overtime hours against the same month last year, HR payroll extract.",
    )

    # 5. Next-best offer: being scoped.
    nbo = _use_case(
        owner,
        team,
        name="Next-best offer",
        description="Suggest the product each customer is likeliest to want next, in the app and in branches.",
        sponsor="Marketing Director",
        kpi="Cross-sell rate",
        expected_annual_value=D("180000"),
        value_assumptions="0.5 points more cross-sell on 200,000 active customers.",
        links=links(datasets=("Campaign responses", "Email engagement", "Customer segments")),
        stages=[("scoping", 10, "Workshops with Marketing.")],
        months=months,
    )
    _costs(nbo, owner, months[10:], people=[3000, 3500])

    # 6. Merchant risk: an idea with an expected value, nothing spent.
    _use_case(
        owner,
        team,
        name="Merchant risk scoring",
        description="Score merchants at onboarding for chargeback risk.",
        sponsor="Head of Acquiring",
        kpi="Chargebacks per thousand merchants",
        expected_annual_value=D("120000"),
        links=links(datasets=("Merchant directory",)),
        stages=[],
        months=months,
    )

    # From this month on the platform derives what it can (compute hours, predictions served).
    today = timezone.localdate()
    services.accrue(start=today.replace(day=1), end=today)


def _rates(admin, environments: dict) -> None:
    if not ComputeRate.objects.filter(environment__isnull=True).exists():
        services.set_compute_rate(by=admin, environment=None, endpoint_hour_rate="0.35", job_hour_rate="0.80")
    for name, endpoint_rate, job_rate in (("staging", "0.45", "0.80"), ("production", "1.20", "1.50")):
        environment = environments.get(name)
        if environment is not None and not ComputeRate.objects.filter(environment=environment).exists():
            services.set_compute_rate(
                by=admin, environment=environment, endpoint_hour_rate=endpoint_rate, job_hour_rate=job_rate
            )


def _use_case(owner, team, *, name, links, stages, months, visibility=UseCase.Visibility.ORGANISATION, **details):
    use_case = services.create_use_case(by=owner, name=name, team=team, visibility=visibility, **details)
    services.set_links(use_case=use_case, by=owner, **links)
    for stage, _month, note in stages:
        services.change_stage(use_case=use_case, by=owner, stage=stage, note=note)
    # Back-date the history to the months it happened (creation: the first month).
    rows = list(StageChange.objects.filter(use_case=use_case).order_by("id"))
    days = [months[0][0]] + [months[index][0].replace(day=min(12 + n, 28)) for n, (_, index, _) in enumerate(stages)]
    for row, day in zip(rows, days, strict=True):
        row.changed_at = _at(day)
        row.save(update_fields=["changed_at"])
    UseCase.objects.filter(pk=use_case.pk).update(created_at=_at(months[0][0]))
    return use_case


def _costs(use_case, owner, months, **by_category: list[int]) -> None:
    for category, amounts in by_category.items():
        for (start, end), amount in zip(months, amounts, strict=True):
            if amount:
                services.add_cost(
                    use_case=use_case,
                    by=owner,
                    category=category,
                    period_start=start,
                    period_end=end,
                    amount=D(amount),
                    note={"people": "Team time (timesheets)", "data": "Data supplier fees"}.get(category, ""),
                )


def _import_compute(use_case, owner, months, amounts: list[int]) -> None:
    """Compute before Causeway accrued it: the monthly cloud bill, imported as CSV."""
    lines = ["period_start,period_end,category,amount,note"]
    lines += [
        f"{start},{end},compute,{amount}.00,Cloud bill (cost-allocation tag)"
        for (start, end), amount in zip(months, amounts, strict=True)
        if amount
    ]
    if len(lines) > 1:
        services.import_entries(use_case=use_case, by=owner, kind="costs", content="\n".join(lines).encode())


def _values(use_case, owner, months, amounts: list[int], evidence: str) -> None:
    for (start, end), amount in zip(months, amounts, strict=True):
        if amount:
            services.add_value(
                use_case=use_case, by=owner, period_start=start, period_end=end, amount=D(amount), evidence=evidence
            )
