"""Catalog at scale: search, list and dataset page latency with 100,000 datasets and
1,000,000 columns, through the real views (Django test client, no network).

    CAUSEWAY_ENV=dev DATABASE_URL=... .venv/bin/python bench/catalog_search.py [--datasets 100000]

Builds the corpus once in its own database (SQLite file var/bench/catalog.sqlite3, or the
PostgreSQL database of DATABASE_URL with the suffix _bench), then prints p50/p95/max in ms and
the query count of each page.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CAUSEWAY_ENV", "dev")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# `--vocabulary N` draws words from N terms (Zipf-weighted) instead of the 24 base words, where
# every word matches about half the catalog; each vocabulary gets its own corpus database.
VOCABULARY = int(sys.argv[sys.argv.index("--vocabulary") + 1]) if "--vocabulary" in sys.argv else 24
SUFFIX = "" if VOCABULARY == 24 else f"_v{VOCABULARY}"
if not os.environ.get("DATABASE_URL"):
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SQLITE_PATH", str(ROOT / "var" / "bench" / f"catalog{SUFFIX}.sqlite3"))
else:
    os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].rstrip("/") + "_bench" + SUFFIX

WORDS = [
    "customer",
    "loan",
    "card",
    "payment",
    "fraud",
    "churn",
    "credit",
    "branch",
    "merchant",
    "campaign",
    "email",
    "risk",
    "score",
    "balance",
    "region",
    "account",
    "transaction",
    "default",
    "income",
    "segment",
    "retention",
    "marketing",
    "staff",
    "rate",
]


VOCAB = WORDS + [f"term{i}" for i in range(max(0, VOCABULARY - len(WORDS)))]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCAB))] if VOCABULARY > 24 else None


def pick(rng: random.Random, k: int) -> list[str]:
    """k distinct words: uniform over the base words, Zipf-weighted over a larger vocabulary."""
    if WEIGHTS is None:
        return rng.sample(WORDS, k)
    chosen: list[str] = []
    while len(chosen) < k:
        word = rng.choices(VOCAB, WEIGHTS)[0]
        if word not in chosen:
            chosen.append(word)
    return chosen


def build(n_datasets: int, columns_per_dataset: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.catalog import search
    from apps.catalog.models import Column, Dataset, DatasetVersion, Tag

    if Dataset.objects.count() >= n_datasets:
        return
    rng = random.Random(7)  # noqa: S311 — benchmark data
    owner, _ = User.objects.get_or_create(username="bench-owner")
    tags = [Tag.objects.get_or_create(name=w)[0] for w in WORDS]
    started = time.perf_counter()
    batch = 2000
    for start in range(Dataset.objects.count(), n_datasets, batch):
        with transaction.atomic():
            rows = []
            for i in range(start, min(start + batch, n_datasets)):
                words = pick(rng, 3)
                rows.append(
                    Dataset(
                        name=f"{words[0]} {words[1]} {i}",
                        slug=f"bench-{i}",
                        owner=owner,
                        description=f"{' '.join(pick(rng, 8))} data set number {i}",
                        classification=rng.choice(["public", "internal", "confidential", "pii"]),
                        visibility="organisation" if rng.random() < 0.8 else "private",
                        format="csv",
                    )
                )
            created = Dataset.objects.bulk_create(rows)
            if not created[0].pk:
                created = list(Dataset.objects.filter(slug__in=[d.slug for d in rows]))
            versions = DatasetVersion.objects.bulk_create(
                [DatasetVersion(dataset=d, number=1, status="ready", row_count=1000, format="csv") for d in created]
            )
            if not versions[0].pk:
                versions = list(DatasetVersion.objects.filter(dataset__in=created))
            Column.objects.bulk_create(
                [
                    Column(version=v, position=p, name=f"{pick(rng, 1)[0]}_{p}", type="integer")
                    for v in versions
                    for p in range(columns_per_dataset)
                ],
                batch_size=5000,
            )
            Dataset.objects.bulk_update(
                [Dataset(pk=v.dataset_id, current_version_id=v.pk) for v in versions], ["current_version"]
            )
            through = Dataset.tags.through
            through.objects.bulk_create(
                [through(dataset_id=d.pk, tag_id=t.pk) for d in created for t in rng.sample(tags, 2)]
            )
            for dataset in Dataset.objects.filter(pk__in=[d.pk for d in created]).select_related("current_version"):
                search.reindex(dataset)
        print(f"  built {min(start + batch, n_datasets)} datasets ({time.perf_counter() - started:.0f}s)", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what beat's core.refresh_planner_statistics does hourly
    print(f"corpus built in {time.perf_counter() - started:.0f}s at {timezone.now():%H:%M}")


def measure(label: str, request, repeat: int) -> None:
    from django.db import connection

    request()  # warm
    times = []
    executed: list[str] = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        request()
    for _ in range(repeat):
        started = time.perf_counter()
        response = request()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(
        f"{label:<28} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   max {times[-1]:7.1f} ms"
        f"   queries {len(executed)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--vocabulary", type=int, default=24, help="distinct words (Zipf-weighted above 24)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    if connection.vendor == "postgresql":
        _ensure_pg_database()
    call_command("migrate", verbosity=0)
    build(args.datasets, args.columns)
    from apps.accounts.models import User
    from apps.catalog.models import Dataset

    user, _ = User.objects.get_or_create(username="bench-reader")
    client = Client()
    client.force_login(user)
    slug = Dataset.objects.filter(visibility="organisation").order_by("pk")[args.datasets // 2 :].first().slug
    print(f"{connection.vendor}: {Dataset.objects.count()} datasets, {args.datasets * args.columns} columns")
    rng = random.Random(1)  # noqa: S311
    measure("search (one word)", lambda: client.get("/catalog/", {"q": pick(rng, 1)[0]}), args.repeat)
    measure("search (two words)", lambda: client.get("/catalog/", {"q": " ".join(pick(rng, 2))}), args.repeat)
    measure("search API", lambda: client.get("/api/v1/datasets/", {"q": pick(rng, 1)[0]}), args.repeat)
    measure("catalog list", lambda: client.get("/catalog/"), args.repeat)
    measure("catalog list, facet filter", lambda: client.get("/catalog/", {"classification": "public"}), args.repeat)
    measure("dataset page", lambda: client.get(f"/catalog/datasets/{slug}/"), args.repeat)


def _ensure_pg_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


if __name__ == "__main__":
    main()
