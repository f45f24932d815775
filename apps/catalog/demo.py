"""Demo catalog: a few dozen datasets across domains, some confidential or PII, with small
generated files profiled by the worker, and OpenLineage-style lineage between them."""

from __future__ import annotations

import csv
import random
import uuid
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.accounts.models import Team
from apps.catalog import services
from apps.catalog.models import Dataset, Domain, LineageRun, LineageRunDataset

DOMAINS = [
    ("Customers", "Who our customers are"),
    ("Credit", "Loans and repayments"),
    ("Payments", "Cards and transfers"),
    ("Marketing", "Campaigns and responses"),
    ("Operations", "Branches and staff"),
]

# name, domain, classification, tags, columns kind, team. Platform Ops owns some restricted
# data, so Risk Analytics people see its schema and must ask for its content.
DATASETS = [
    ("Customer master", "Customers", "pii", ["customers", "golden-record"], "customers", "Platform Ops"),
    ("Customer segments", "Customers", "internal", ["customers", "segmentation"], "segments", "Risk Analytics"),
    ("Customer churn labels", "Customers", "confidential", ["churn", "labels"], "churn", "Risk Analytics"),
    ("Loan applications", "Credit", "confidential", ["credit", "applications"], "loans", "Risk Analytics"),
    ("Loan repayments", "Credit", "confidential", ["credit", "repayments"], "repayments", "Risk Analytics"),
    ("Credit bureau scores", "Credit", "pii", ["credit", "external"], "bureau", "Platform Ops"),
    ("Default training set", "Credit", "confidential", ["credit", "training"], "training", "Risk Analytics"),
    ("Card transactions", "Payments", "confidential", ["fraud", "transactions"], "transactions", "Risk Analytics"),
    ("Merchant directory", "Payments", "public", ["merchants", "reference"], "merchants", "Platform Ops"),
    ("Fraud alerts", "Payments", "internal", ["fraud", "alerts"], "alerts", "Risk Analytics"),
    ("Campaign responses", "Marketing", "internal", ["marketing", "campaigns"], "campaigns", "Risk Analytics"),
    ("Email engagement", "Marketing", "pii", ["marketing", "email"], "email", "Platform Ops"),
    ("Branch locations", "Operations", "public", ["branches", "geo"], "branches", "Platform Ops"),
    ("Staff rota", "Operations", "internal", ["staff"], "rota", "Platform Ops"),
    ("Interest rates", "Credit", "public", ["rates", "reference"], "rates", "Risk Analytics"),
    ("Country codes", "Operations", "public", ["reference", "geo"], "countries", "Platform Ops"),
]

LINEAGE = [  # job, inputs, outputs
    ("build_training_set", ["Loan applications", "Loan repayments", "Credit bureau scores"], ["Default training set"]),
    ("segment_customers", ["Customer master", "Card transactions"], ["Customer segments"]),
    ("label_churn", ["Customer master", "Campaign responses"], ["Customer churn labels"]),
    ("score_fraud", ["Card transactions", "Merchant directory"], ["Fraud alerts"]),
]


def load(context: dict) -> None:
    if Dataset.objects.filter(name="Customer master").exists():
        context["datasets"] = {d.name: d for d in Dataset.objects.all()}
        return
    users = context["users"]
    root = Path(settings.CATALOG_DATA_ROOT) / "demo"
    root.mkdir(parents=True, exist_ok=True)
    domains = {
        n: Domain.objects.get_or_create(slug=n.lower(), defaults={"name": n, "description": d})[0] for n, d in DOMAINS
    }
    teams = {t.name: t for t in Team.objects.all()}
    rng = random.Random(42)  # noqa: S311 — reproducible demo data, not security
    datasets = {}
    for name, domain, classification, tags, kind, team in DATASETS:
        owner = users["scientist"] if team == "Risk Analytics" else users["ops"]
        dataset = services.create_dataset(
            by=users["admin"] if owner == users["ops"] else owner,
            name=name,
            description=f"**{name}** for the {domain.lower()} domain. Refreshed monthly by the data platform team.",
            classification=classification,
            team=teams.get(team),
            domain=domains[domain],
            tags=tags,
            steward=users["approver"] if classification in ("confidential", "pii") else None,
            source_kind="path",
            external_namespace="warehouse://causeway",
            external_name=f"analytics.{kind}",
        )
        path = root / f"{kind}.csv"
        _write_file(path, kind, rng)
        services.add_version_from_path(dataset=dataset, by=dataset.owner, path=str(path), note="demo data")
        datasets[name] = dataset
    _add_lineage(datasets)
    context["datasets"] = datasets


def _add_lineage(datasets: dict[str, Dataset]) -> None:
    now = timezone.now()
    for job, inputs, outputs in LINEAGE:
        run = LineageRun.objects.create(
            run_id=uuid.uuid4(),
            job_namespace="airflow://causeway",
            job_name=job,
            state="COMPLETE",
            started_at=now - timedelta(hours=2),
            ended_at=now - timedelta(hours=1),
            producer="demo",
        )
        for name in inputs:
            LineageRunDataset.objects.create(run=run, dataset=datasets[name], direction="input")
        for name in outputs:
            LineageRunDataset.objects.create(run=run, dataset=datasets[name], direction="output")


def _write_file(path: Path, kind: str, rng: random.Random, rows: int = 400) -> None:
    start = date(2024, 1, 1)
    regions = ["north", "south", "east", "west"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "region", "amount", "score", "event_date", "flag", f"{kind}_note"])
        for i in range(rows):
            writer.writerow(
                [
                    i + 1,
                    rng.choice(regions),
                    round(rng.lognormvariate(4, 0.8), 2),
                    "" if rng.random() < 0.05 else round(rng.gauss(600, 80)),
                    (start + timedelta(days=rng.randint(0, 600))).isoformat(),
                    rng.random() < 0.1,
                    rng.choice(["", "manual review", "auto", "imported"]),
                ]
            )
