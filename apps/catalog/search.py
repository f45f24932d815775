"""Full-text search over datasets behind one interface: PostgreSQL tsvector + GIN on
PostgreSQL, FTS5 on SQLite. The indexed document is a dataset's name (weight A), its tags and
column names (B) and its description (C); services call `reindex` after every change."""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Value

from apps.catalog.models import Dataset

_FTS_TABLE = "catalog_dataset_fts"
_WORD = re.compile(r"[\w]+", re.UNICODE)


def reindex(dataset: Dataset) -> None:
    """Rebuild the search document of one dataset (inside the caller's transaction), and make
    cached facet counts stale."""
    transaction.on_commit(_bump_generation)
    tags = " ".join(dataset.tags.values_list("name", flat=True))
    columns = ""
    if dataset.current_version_id:
        columns = " ".join(dataset.current_version.columns.values_list("name", flat=True))
    keywords = f"{tags} {columns}".strip()
    text = f"{dataset.name}\n{keywords}\n{dataset.description}"
    Dataset.objects.filter(pk=dataset.pk).update(search_text=text)
    if connection.vendor == "postgresql":
        Dataset.objects.filter(pk=dataset.pk).update(
            search_vector=SearchVector(Value(dataset.name), weight="A", config="english")
            + SearchVector(Value(keywords.replace("_", " ")), weight="B", config="english")
            + SearchVector(Value(dataset.description), weight="C", config="english")
        )
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_FTS_TABLE} WHERE rowid = %s", [dataset.pk])  # noqa: S608
            cursor.execute(
                f"INSERT INTO {_FTS_TABLE}(rowid, name, keywords, description) VALUES (%s, %s, %s, %s)",  # noqa: S608
                [dataset.pk, dataset.name, keywords.replace("_", " "), dataset.description],
            )


def _bump_generation() -> None:
    try:
        cache.incr("catalog:generation")
    except ValueError:
        cache.set("catalog:generation", 2, None)


MAX_RANKED = 1000


def ranked_ids(text: str, limit: int = MAX_RANKED) -> list[int]:
    """Ids of the best-matching datasets for the words of `text`, best first (at most `limit`).
    Every word must match, as a prefix. Name matches weigh most, then tags and column names,
    then descriptions. Permission filtering is the caller's (selectors.search_datasets)."""
    words = _WORD.findall(text.lower())[:12]
    if not words:
        return []
    if connection.vendor == "postgresql":
        query = SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config="english")
        return list(
            Dataset.objects.filter(search_vector=query)
            .annotate(rank=SearchRank(F("search_vector"), query))
            .order_by("-rank", "name")
            .values_list("pk", flat=True)[:limit]
        )
    match = " ".join(f'"{w}"*' for w in words)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT rowid FROM {_FTS_TABLE} WHERE {_FTS_TABLE} MATCH %s "  # noqa: S608
            f"ORDER BY bm25({_FTS_TABLE}, 10.0, 4.0, 1.0) LIMIT %s",
            [match, limit],
        )
        return [row[0] for row in cursor.fetchall()]
