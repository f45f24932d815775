"""Building catalog rows for tests through the real services."""

from apps.catalog import services
from apps.catalog.models import DatasetVersion

PROFILE = {
    "format": "csv",
    "row_count": 3,
    "columns": [
        {
            "name": "customer_id",
            "type": "integer",
            "physical_type": "BIGINT",
            "nullable": False,
            "null_count": 0,
            "null_fraction": 0.0,
            "distinct_count": 3,
            "min": 1,
            "max": 3,
            "mean": 2.0,
            "std": 1.0,
            "histogram": {"edges": [1, 2, 3], "counts": [1, 2]},
        },
        {
            "name": "email",
            "type": "string",
            "physical_type": "VARCHAR",
            "nullable": True,
            "null_count": 1,
            "null_fraction": 0.33,
            "distinct_count": 2,
            "min": "a@x.io",
            "max": "b@x.io",
            "top_values": [{"value": "a@x.io", "count": 1}],
        },
    ],
    "sample_rows": [
        {"customer_id": 1, "email": "a@x.io"},
        {"customer_id": 2, "email": "b@x.io"},
        {"customer_id": 3, "email": None},
    ],
}


def make_dataset(
    owner, name, *, classification="internal", visibility="organisation", team=None, profiled=True, **extra
):
    dataset = services.create_dataset(
        by=owner, name=name, classification=classification, visibility=visibility, team=team, **extra
    )
    if profiled:
        add_profiled_version(dataset, owner)
        dataset.refresh_from_db()
    return dataset


def add_profiled_version(dataset, by, profile=None):
    number = dataset.versions.count() + 1
    version = DatasetVersion.objects.create(dataset=dataset, number=number, format="csv", created_by=by)
    return services.apply_profile(version=version, profile=profile or PROFILE, content_hash="ab" * 32, size_bytes=42)
