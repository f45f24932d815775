"""Full-text search over datasets behind one interface: PostgreSQL tsvector + GIN on
PostgreSQL, FTS5 on SQLite. The indexed document is a dataset's name (weight A), its tags and
column names (B) and its description (C); services call `reindex` after every change."""

from __future__ import annotations

import json
import re

from django.contrib.postgres.search import SearchVector
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Value

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
            + SearchVector(Value(dataset.description), weight="C", config="english"),
            name_vector=SearchVector(Value(dataset.name), config="english"),
            keyword_vector=SearchVector(Value(f"{dataset.name} {keywords.replace('_', ' ')}"), config="english"),
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


# The best 500 matches are kept (20 pages of results; facets count within them). Facets and the
# permission filter cost one row each, and at 100,000 datasets 1,000 kept matches cost about a
# third more per search than 500 (bench/catalog_search.py).
MAX_RANKED = 500

# Matches come in tiers: every word in the name, then every word in the name, tags or column
# names, then every word anywhere. Within a tier, matches are ordered by relevance when there are
# few of them; when a word is common (tens of thousands of matches), ranking would score every
# match (the cost grows with the catalog) to order rows that all match in the same fields, so
# that tier is listed by name instead, walking the name index until enough rows are found.
# A tier is "common" above sqrt(wanted × catalog size) matches: ranking costs one score per
# match, the name walk about wanted ÷ selectivity rows, and the two are equal there.
_TIERS = (("name_vector", "name"), ("keyword_vector", "name keywords"), ("search_vector", ""))
# Ranking a match reads its whole document; walking the name index reads only the small name
# or keyword vector: about a sixth of the cost per row on PostgreSQL, measured.
_RANK_COST_RATIO = 6
_BM25 = "bm25(catalog_dataset_fts, 10.0, 4.0, 1.0)"


def ranked_ids(text: str, limit: int = MAX_RANKED) -> list[int]:
    """Ids of the best-matching datasets for the words of `text`, best first (at most `limit`).
    Every word must match: whole words (stemmed on PostgreSQL), and the last one as a prefix,
    as it is typed ("prefix last": a prefix of every word would expand each into all the
    words it starts, and multi-word searches cost ten times more). Name matches come first,
    then tags and column names, then descriptions. Permission filtering is the caller's
    (selectors.search_datasets)."""
    words = _WORD.findall(text.lower())[:12]
    if not words:
        return []
    tier_ids = _postgres_tier if connection.vendor == "postgresql" else _sqlite_tier
    found: list[int] = []
    seen: set[int] = set()
    catalog_size = _catalog_size()
    for vector, columns in _TIERS:
        wanted = limit - len(found)
        if wanted <= 0:
            break
        rank_at_most = max(wanted, int((wanted * catalog_size / _RANK_COST_RATIO) ** 0.5))
        # Earlier tiers' matches also match this one: fetch enough to skip them.
        for pk in tier_ids(
            words, vector if connection.vendor == "postgresql" else columns, wanted + len(seen), rank_at_most
        ):
            if pk not in seen:
                seen.add(pk)
                found.append(pk)
                if len(found) >= limit:
                    break
    return found


def _catalog_size() -> int:
    """The planner's row estimate (kept fresh by the hourly ANALYZE); exact enough to choose a
    strategy, and free."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'catalog_dataset'::regclass")
        else:
            cursor.execute("SELECT max(rowid) FROM catalog_dataset_fts")
        row = cursor.fetchone()
    return max(int(row[0] or 0), 1) if row else 1


def _postgres_tier(words: list[str], vector: str, wanted: int, rank_at_most: int) -> list[int]:
    query = " & ".join([*words[:-1], f"{words[-1]}:*"])
    with connection.cursor() as cursor:
        if _planner_estimate(cursor, vector, query) > _SURELY_COMMON * rank_at_most:
            ids = None  # common beyond doubt: straight to the name walk, without counting matches
        else:
            cursor.execute(
                f"SELECT id FROM catalog_dataset WHERE {vector} @@ to_tsquery('english', %s) LIMIT %s",  # noqa: S608
                [query, rank_at_most + 1],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return []
        if ids is not None and len(ids) <= rank_at_most:
            cursor.execute(
                "SELECT id FROM catalog_dataset WHERE id = ANY(%s) "
                "ORDER BY ts_rank(search_vector, to_tsquery('english', %s)) DESC, name, id LIMIT %s",
                [ids, query, wanted],
            )
        else:
            # ts_match_vq is the function behind @@; written as a call, the GIN index cannot be
            # used, so the planner walks the name index and stops after `wanted` matches.
            cursor.execute(
                f"SELECT id FROM catalog_dataset WHERE ts_match_vq({vector}, to_tsquery('english', %s)) "  # noqa: S608
                "ORDER BY name, id LIMIT %s",
                [query, wanted],
            )
        return [row[0] for row in cursor.fetchall()]


# Counting a common word's matches (up to rank_at_most) costs as much as listing them by name.
# The planner's estimate for words in its statistics (most common elements of the column, kept
# by ANALYZE) is close (10,915 estimated for 10,709 matches of "loan" at 100,000 datasets), so an
# estimate this many times over the threshold skips the count. Rare words are not in the
# statistics and get small estimates: they are counted, which is cheap for them.
_SURELY_COMMON = 2


def _planner_estimate(cursor, vector: str, query: str) -> float:
    cursor.execute(
        f"EXPLAIN (FORMAT JSON) SELECT id FROM catalog_dataset WHERE {vector} @@ to_tsquery('english', %s)",  # noqa: S608
        [query],
    )
    plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # psycopg decodes json columns; be safe with other drivers
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def _sqlite_tier(words: list[str], columns: str, wanted: int, rank_at_most: int) -> list[int]:
    match = " AND ".join([*(f'"{w}"' for w in words[:-1]), f'"{words[-1]}"*'])
    if columns:
        match = f"{{{columns}}} : ({match})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {_FTS_TABLE} WHERE {_FTS_TABLE} MATCH %s LIMIT %s)",  # noqa: S608
            [match, rank_at_most + 1],
        )
        matches = cursor.fetchone()[0]
        if not matches:
            return []
        if matches <= rank_at_most:
            cursor.execute(
                f"SELECT rowid FROM {_FTS_TABLE} WHERE {_FTS_TABLE} MATCH %s ORDER BY {_BM25} LIMIT %s",  # noqa: S608
                [match, wanted],
            )
        else:
            cursor.execute(
                f"SELECT id FROM catalog_dataset WHERE id IN (SELECT rowid FROM {_FTS_TABLE} "  # noqa: S608
                f"WHERE {_FTS_TABLE} MATCH %s) ORDER BY name, id LIMIT %s",
                [match, wanted],
            )
        return [row[0] for row in cursor.fetchall()]
