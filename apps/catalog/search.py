"""Full-text search over datasets behind one interface: PostgreSQL tsvector + GIN on
PostgreSQL, FTS5 on SQLite. The indexed document is a dataset's name (weight A), its tags and
column names (B) and its description (C); services call `reindex` after every change."""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import F, FloatField, QuerySet, Value
from django.db.models.expressions import RawSQL

from apps.catalog.models import Dataset

_FTS_TABLE = "catalog_dataset_fts"
_WORD = re.compile(r"[\w]+", re.UNICODE)


def reindex(dataset: Dataset) -> None:
    """Rebuild the search document of one dataset (inside the caller's transaction)."""
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


def remove(dataset_id: int) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_FTS_TABLE} WHERE rowid = %s", [dataset_id])  # noqa: S608


def matching(queryset: QuerySet[Dataset], text: str) -> QuerySet[Dataset]:
    """Datasets of `queryset` matching the words of `text`, annotated with `rank` (higher is
    better) and ordered by it."""
    words = _WORD.findall(text.lower())[:12]
    if not words:
        return queryset.annotate(rank=Value(0.0, output_field=FloatField()))
    if connection.vendor == "postgresql":
        query = SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config="english")
        return (
            queryset.filter(search_vector=query)
            .annotate(rank=SearchRank(F("search_vector"), query))
            .order_by("-rank", "name")
        )
    # FTS5: prefix match on every word; bm25 is lower-is-better, weights per column.
    match = " ".join(f'"{w}"*' for w in words)
    # The table name is a constant and the match text a bound parameter: no injection path.
    ranked_ids = RawSQL(  # noqa: S611
        f"SELECT rowid FROM {_FTS_TABLE} WHERE {_FTS_TABLE} MATCH %s",  # noqa: S608
        [match],
    )
    rank = RawSQL(  # noqa: S611
        f"SELECT -bm25({_FTS_TABLE}, 10.0, 4.0, 1.0) FROM {_FTS_TABLE} "  # noqa: S608
        f"WHERE {_FTS_TABLE} MATCH %s AND rowid = catalog_dataset.id",
        [match],
        output_field=FloatField(),
    )
    return queryset.filter(pk__in=ranked_ids).annotate(rank=rank).order_by("-rank", "name")
