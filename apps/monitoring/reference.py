"""The reference an endpoint's data is compared with: the training dataset version's profile.

A model version reaches its training data through its run's inputs (RunInput → DatasetVersion,
as the lineage graph reads it); the input logged with context "training" comes first, then the
newest profiled one. The owner may name another dataset version in the endpoint's monitoring
settings.

The spec derived from a profile says, per column, how served values are summarised so that
they compare with the profile: numbers on the profile's histogram edges, anything else by value
against its top values.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, IntegerField, Value, When

from apps.catalog.models import DatasetVersion
from apps.tracking.models import RunInput

NUMERIC_TYPES = {"integer", "float"}
CATEGORICAL_TYPES = {"string", "boolean"}


def training_dataset_version(model_version_id: int | None) -> DatasetVersion | None:
    """The profiled dataset version the model version was trained on, or None (one query)."""
    if model_version_id is None:
        return None
    found = (
        RunInput.objects.filter(
            run__model_versions__pk=model_version_id,
            dataset_version__isnull=False,
            dataset_version__profile__isnull=False,
        )
        .annotate(
            training=Case(When(context__iexact="training", then=Value(0)), default=1, output_field=IntegerField())
        )
        .select_related("dataset_version__dataset")
        .order_by("training", "-dataset_version__created_at", "-dataset_version__pk")
        .first()
    )
    return found.dataset_version if found else None


def reference_for(*, reference_version_id: int | None, model_version_id: int | None) -> DatasetVersion | None:
    """The owner's chosen reference, else the serving version's training data."""
    if reference_version_id:
        chosen = (
            DatasetVersion.objects.filter(pk=reference_version_id, profile__isnull=False)
            .select_related("dataset")
            .first()
        )
        if chosen is not None:
            return chosen
    return training_dataset_version(model_version_id)


def spec_of(profile: dict | None) -> dict[str, dict[str, Any]]:
    """{column: {"kind": "numeric", "edges": [...], "counts": [...]} |
    {"kind": "categorical", "categories": {value: count}, "other": n}} for the profile's columns
    that can be compared (dates and nested types are left out)."""
    spec: dict[str, dict[str, Any]] = {}
    for column in (profile or {}).get("columns", []):
        name, kind = column.get("name"), column.get("type")
        if not name:
            continue
        histogram = column.get("histogram") or {}
        edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
        non_null = max(0, (profile.get("row_count") or 0) - (column.get("null_count") or 0))
        if kind in NUMERIC_TYPES and len(edges) == len(counts) + 1 and counts:
            spec[name] = {"kind": "numeric", "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
        elif kind in CATEGORICAL_TYPES and column.get("top_values"):
            categories = {_label(item["value"]): int(item["count"]) for item in column["top_values"]}
            spec[name] = {
                "kind": "categorical",
                "categories": categories,
                # Rows whose value is not among the top values: "other" in both distributions.
                "other": max(0, non_null - sum(categories.values())),
            }
    return spec


def _label(value: Any) -> str:
    """Category values as the summaries write them: str() of the served value."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
