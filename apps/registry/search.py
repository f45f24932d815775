"""MLflow's registry search grammar (`search_registered_models`, `search_model_versions`),
compiled to the Django ORM with the tracking app's parser, so the registry and tracking read
filter strings the same way (tokenizer, quoting, LIKE semantics, error messages).

Registered models: `name` (=, !=, LIKE, ILIKE, IN, NOT IN) and `tags.<key>` (=, !=, LIKE,
ILIKE); order by name, timestamp / last_updated_timestamp (the same column, as MLflow), and
name ascending is always the last tie-breaker. Model versions: `name`, `run_id` (with IN),
`source_path`, `version_number` (numeric) and tags; order by name, version_number,
creation_timestamp, last_updated_timestamp, then name ascending and version descending.
Prompts (MLflow's `mlflow.prompt.is_prompt` tag) are left out unless the filter asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.registry.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag

# The tracking app's parser and compiler helpers: one grammar for every MLflow search.
from apps.tracking.search import (
    KEY_VALUE_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Comparison,
    Parser,
    SearchError,
    Vocabulary,
    condition,
    parse_order_by,
    validate_clause,
)

__all__ = ["SearchError", "filter_models", "filter_versions", "order_models", "order_versions"]

PROMPT_TAG = "mlflow.prompt.is_prompt"
_TAG_COMPARATORS = KEY_VALUE_COMPARATORS - {"IS NULL", "IS NOT NULL"}
_PREFIXES = {
    **dict.fromkeys(("tag", "tags"), "tag"),
    **dict.fromkeys(("attribute", "attributes", "attr"), "attribute"),
}

_MODELS = Vocabulary(
    prefixes=_PREFIXES,
    entities=("attribute", "tag"),
    attributes={"name": "name"},
    order_attributes={
        "name": "name",
        "timestamp": "last_updated_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
    },
    numeric_attributes=frozenset(),
    list_attributes=frozenset({"name"}),
    comparators={"tag": _TAG_COMPARATORS, "string": STRING_COMPARATORS, "numeric": NUMERIC_COMPARATORS},
)
_VERSIONS = Vocabulary(
    prefixes=_PREFIXES,
    entities=("attribute", "tag"),
    attributes={key: key for key in ("name", "version_number", "run_id", "source_path")},
    order_attributes={key: key for key in ("name", "version_number", "creation_timestamp", "last_updated_timestamp")},
    numeric_attributes=frozenset({"version_number"}),
    list_attributes=frozenset({"name", "run_id"}),
    comparators={
        "tag": _TAG_COMPARATORS,
        "string": STRING_COMPARATORS,
        "numeric": NUMERIC_COMPARATORS,
        "source_path": frozenset({"=", "!=", "LIKE", "ILIKE"}),
    },
)
_VERSION_FIELDS = {
    "name": "registered_model__name",
    "version_number": "version",
    "run_id": "run__run_uuid",
    "source_path": "source",
}
_VERSION_ORDER = {
    "name": "registered_model__name",
    "version_number": "version",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
}


def _parse(filter_string: str | None, vocabulary: Vocabulary) -> list[Comparison]:
    if not filter_string or not filter_string.strip():
        return []
    comparisons = [validate_clause(clause, vocabulary) for clause in Parser(filter_string).filter()]
    for comparison in comparisons:
        numeric = comparison.key in vocabulary.numeric_attributes and comparison.entity == "attribute"
        if numeric and isinstance(comparison.value, float):
            raise SearchError(f"Invalid value for numeric attribute '{comparison.key}': {comparison.value!r}")
    return comparisons


def _tag_condition(model, owner_field: str, comparison: Comparison) -> Q:
    tags = model.objects.filter(**{owner_field: OuterRef("pk")}, key=comparison.key).filter(
        condition("value", comparison.comparator, comparison.value)
    )
    return Q(Exists(tags))


def _without_prompts(queryset: QuerySet, model, owner_field: str, comparisons: list[Comparison]) -> QuerySet:
    if any(c.entity == "tag" and c.key == PROMPT_TAG for c in comparisons):
        return queryset
    prompts = model.objects.filter(**{owner_field: OuterRef("pk")}, key=PROMPT_TAG, value__iexact="true")
    return queryset.exclude(Exists(prompts))


def filter_models(queryset: QuerySet[RegisteredModel], filter_string: str | None) -> QuerySet[RegisteredModel]:
    """`queryset` narrowed by a search_registered_models filter (one SQL query)."""
    comparisons = _parse(filter_string, _MODELS)
    conditions = [
        _tag_condition(RegisteredModelTag, "registered_model", c)
        if c.entity == "tag"
        else condition("name", c.comparator, c.value)
        for c in comparisons
    ]
    return _without_prompts(queryset.filter(*conditions), RegisteredModelTag, "registered_model", comparisons)


def order_models(queryset: QuerySet[RegisteredModel], order_by: Sequence[str]) -> QuerySet[RegisteredModel]:
    keys = parse_order_by(order_by, _MODELS)
    fields = [key.key if key.ascending else f"-{key.key}" for key in keys]
    if not any(key.key == "name" for key in keys):
        fields.append("name")
    return queryset.order_by(*fields, "pk")


def filter_versions(queryset: QuerySet[ModelVersion], filter_string: str | None) -> QuerySet[ModelVersion]:
    """`queryset` narrowed by a search_model_versions filter (one SQL query)."""
    comparisons = _parse(filter_string, _VERSIONS)
    conditions = [
        _tag_condition(ModelVersionTag, "model_version", c)
        if c.entity == "tag"
        else condition(_VERSION_FIELDS[c.key], c.comparator, c.value)
        for c in comparisons
    ]
    queryset = queryset.filter(*conditions)
    if any(c.entity == "tag" and c.key == PROMPT_TAG for c in comparisons):
        return queryset
    prompts = RegisteredModelTag.objects.filter(
        registered_model=OuterRef("registered_model"), key=PROMPT_TAG, value__iexact="true"
    )
    return queryset.exclude(Exists(prompts))


def order_versions(queryset: QuerySet[ModelVersion], order_by: Sequence[str]) -> QuerySet[ModelVersion]:
    keys = parse_order_by(order_by, _VERSIONS)
    fields = [_VERSION_ORDER[key.key] if key.ascending else f"-{_VERSION_ORDER[key.key]}" for key in keys]
    seen = {key.key for key in keys}
    if "name" not in seen:
        fields.append("registered_model__name")
    if "version_number" not in seen:
        fields.append("-version")
    return queryset.order_by(*fields, "pk")
