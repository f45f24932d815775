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
# A tier is "common" above sqrt(limit × catalog size ÷ cost ratio) matches: ranking costs one
# score per match, the walk limit ÷ selectivity rows (earlier tiers' matches match this one too,
# so every tier's walk must find `limit` rows), and the two are equal there.
# Each tier: (its vector on PostgreSQL, its FTS5 columns on SQLite, the cost of ranking a match
# over the cost of testing a row in the walk). Measured at 100,000 datasets on PostgreSQL:
# ranking 3.3 µs a match; the name and keyword walks test the vectors kept in the name index,
# 0.28 µs a row, but names that start with the word sit together in name order, so a walk
# tests about twice the rows that uniform matches would need; the last tier's walk reads each
# row's whole document, 2.1 µs.
_TIERS = (("name_vector", "name", 6), ("keyword_vector", "name keywords", 6), ("search_vector", "", 1.5))
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
    for vector, columns, rank_cost_ratio in _TIERS:
        if len(found) >= limit:
            break
        # Earlier tiers' matches also match this one, so each tier fetches `limit` rows and
        # skips those already found.
        rank_at_most = max(limit, int((limit * catalog_size / rank_cost_ratio) ** 0.5))
        for pk in tier_ids(words, vector if connection.vendor == "postgresql" else columns, limit, rank_at_most):
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


_RANKED_PASS = (
    "SELECT id, count(*) OVER () FROM ("
    "  SELECT id, name, ts_rank(search_vector, to_tsquery('english', %s)) AS score"
    "  FROM catalog_dataset WHERE {match} LIMIT %s"
    ") AS matches ORDER BY score DESC, name, id LIMIT %s"
)
# The whole words of a query (all but the last), or the whole query when they are all stop
# words (to_tsquery drops those, and an empty query matches nothing). The planner folds it to
# a constant, so the GIN index can use it.
_WHOLE_WORDS = (
    "CASE WHEN numnode(to_tsquery('english', %s)) > 0 THEN to_tsquery('english', %s) ELSE to_tsquery('english', %s) END"
)


def _postgres_tier(words: list[str], vector: str, wanted: int, rank_at_most: int) -> list[int]:
    query = " & ".join([*words[:-1], f"{words[-1]}:*"])
    # `vector` is a column name from _TIERS, never user input.
    with connection.cursor() as cursor:
        match = _rare_whole_words(cursor, words, vector, query, rank_at_most)
        if match is None:
            every_word = (f"{vector} @@ to_tsquery('english', %s)", [query])
            if _planner_estimate(cursor, *every_word) <= _SURELY_COMMON * rank_at_most:
                match = every_word
        if match is not None:
            # One pass over at most rank_at_most + 1 matches both counts and scores them: the
            # score is computed on the row the index match already read (scoring the matches
            # again by id read every row twice, three times the cost).
            condition, params = match
            cursor.execute(_RANKED_PASS.format(match=condition), [query, *params, rank_at_most + 1, wanted])
            rows = cursor.fetchall()
            if not rows or rows[0][1] <= rank_at_most:
                return [row[0] for row in rows]
        # Common: ts_match_vq is the function behind @@; written as a call, the GIN index
        # cannot be used, so the planner walks the name index and stops after `wanted` matches.
        cursor.execute(
            f"SELECT id FROM catalog_dataset WHERE ts_match_vq({vector}, to_tsquery('english', %s)) "  # noqa: S608
            "ORDER BY name, id LIMIT %s",
            [query, wanted],
        )
        return [row[0] for row in cursor.fetchall()]


def _rare_whole_words(cursor, words: list[str], vector: str, query: str, rank_at_most: int) -> tuple[str, list] | None:
    """For several words whose whole words (all but the last) are rare: a condition where the
    index finds those and each of their rows is tested for the last word's prefix. The index
    would otherwise expand the prefix into every word it starts and merge all their matches
    (for "term4", 1,111 words at 100,000 datasets: 8 ms of a 9 ms tier; this way, 0.5 ms)."""
    if len(words) < 2:
        return None
    whole = " & ".join(words[:-1])
    by_index = f"{vector} @@ {_WHOLE_WORDS}"
    if _planner_estimate(cursor, by_index, [whole, whole, query]) > rank_at_most:
        return None
    return f"{by_index} AND ts_match_vq({vector}, to_tsquery('english', %s))", [whole, whole, query, query]


# A tier whose planner estimate is over rank_at_most is walked by name without counting its
# matches. The estimate comes from the most common words ANALYZE keeps for each vector, 10,000 of
# them (migration 0006): at 100,000 datasets it was within 1% of the real count (2,915 estimated
# for 2,919 matches of "term78" in the keyword vector). Near the threshold both strategies cost
# about the same by design, so only a gross error matters; words outside the statistics get
# small estimates and are counted and ranked, which is cheap for them.
_SURELY_COMMON = 1


def _planner_estimate(cursor, condition: str, params: list) -> float:
    cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT id FROM catalog_dataset WHERE {condition}", params)  # noqa: S608
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
