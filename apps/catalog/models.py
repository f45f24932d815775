"""The data catalog: datasets, their versions and columns, access requests, OpenLineage runs.

Visibility (who knows a dataset exists) is decided by columns on the row (owner, team,
visibility) plus explicit guardian shares in direct foreign-key tables, so the filter stays one
indexed query. Classification (who may see content) is a separate rule; see selectors.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.models import Team


class Domain(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    class Classification(models.TextChoices):
        PUBLIC = "public", "Public"
        INTERNAL = "internal", "Internal"
        CONFIDENTIAL = "confidential", "Confidential"
        PII = "pii", "PII"

    class Visibility(models.TextChoices):
        ORGANISATION = "organisation", "Everyone in the organisation"
        PRIVATE = "private", "Owner, team and those it is shared with"

    class SourceKind(models.TextChoices):
        UPLOAD = "upload", "Uploaded file"
        PATH = "path", "Server path"
        URI = "uri", "External URI"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"
        JSONL = "jsonl", "JSON lines"
        OTHER = "other", "Other / external"

    RESTRICTED = (Classification.CONFIDENTIAL, Classification.PII)

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets_owned")
    steward = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="datasets_stewarded"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="datasets")
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="datasets")
    tags = models.ManyToManyField(Tag, blank=True, related_name="datasets")
    classification = models.CharField(max_length=16, choices=Classification.choices, default=Classification.INTERNAL)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.ORGANISATION)
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices, default=SourceKind.UPLOAD)
    source_uri = models.CharField(max_length=1000, blank=True)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.CSV)
    documentation_links = models.JSONField(default=list, blank=True)
    # OpenLineage identity (namespace + name), so pipelines' events find the dataset.
    external_namespace = models.CharField(max_length=500, blank=True)
    external_name = models.CharField(max_length=500, blank=True)
    current_version = models.ForeignKey(
        "DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    followers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="datasets_followed")
    # Denormalised text for search (name, tags, column names, description), kept by
    # apps.catalog.search. On PostgreSQL the weighted tsvector has a GIN index; on SQLite an
    # FTS5 table mirrors it (both created in migration 0002).
    search_text = models.TextField(blank=True, editable=False)
    search_vector = SearchVectorField(null=True, editable=False)
    # PostgreSQL only: the name alone, and the name with tags and column names, each with its
    # own GIN index (migration 0005), so the first search tiers never read the whole document.
    name_vector = SearchVectorField(null=True, editable=False)
    keyword_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("view_dataset_content", "Can see a restricted dataset's content")]
        constraints = [
            # One catalog entry per OpenLineage identity (namespace + name), when it has one.
            models.UniqueConstraint(
                fields=["external_namespace", "external_name"],
                condition=~models.Q(external_name=""),
                name="dataset_external_identity_unique",
            )
        ]
        indexes = [
            # The catalog list walks this index in name order, filtering by visibility as it goes.
            models.Index(fields=["name"], name="dataset_name_idx"),
            models.Index(fields=["visibility", "name"], name="dataset_visibility_name_idx"),
            models.Index(fields=["owner", "name"], name="dataset_owner_name_idx"),
            models.Index(fields=["team", "name"], name="dataset_team_name_idx"),
            models.Index(fields=["classification"], name="dataset_classification_idx"),
            models.Index(fields=["external_namespace", "external_name"], name="dataset_external_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_restricted(self) -> bool:
        return self.classification in self.RESTRICTED


class DatasetUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE)


class DatasetGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE)


class DatasetVersion(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for profiling"
        PROFILING = "profiling", "Profiling"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXTERNAL = "external", "External (not profiled)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="datasets/%Y/%m/", max_length=500, blank=True)
    source_uri = models.CharField(max_length=1000, blank=True)
    format = models.CharField(max_length=10, choices=Dataset.Format.choices, default=Dataset.Format.CSV)
    profile = models.JSONField(null=True, blank=True)
    sample_rows = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    produced_by = models.ForeignKey(
        "LineageRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_versions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    profiled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"


class Column(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=300)
    type = models.CharField(max_length=30)
    physical_type = models.CharField(max_length=100, blank=True)
    nullable = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    is_pii = models.BooleanField(default=False)
    stats = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="column_name_unique_per_version")]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class AccessRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        REVOKED = "revoked", "Revoked"
        WITHDRAWN = "withdrawn", "Withdrawn"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="access_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests")
    purpose = models.TextField()
    duration_days = models.PositiveSmallIntegerField(default=90)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["dataset", "requester", "status"], name="access_request_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.requester} → {self.dataset} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.APPROVED and (self.expires_at is None or self.expires_at > timezone.now())


class LineageRun(models.Model):
    """One run of a pipeline job, as reported by OpenLineage events."""

    run_id = models.UUIDField(unique=True, default=uuid.uuid4)
    job_namespace = models.CharField(max_length=500)
    job_name = models.CharField(max_length=500)
    state = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    producer = models.CharField(max_length=500, blank=True)
    facets = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["job_namespace", "job_name"], name="lineage_job_idx")]

    def __str__(self) -> str:
        return f"{self.job_namespace}/{self.job_name} {str(self.run_id)[:8]}"


class LineageRunDataset(models.Model):
    """A dataset read (input) or written (output) by a lineage run."""

    class Direction(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"

    run = models.ForeignKey(LineageRun, on_delete=models.CASCADE, related_name="datasets")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="lineage_links")
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    direction = models.CharField(max_length=6, choices=Direction.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "dataset", "direction"], name="lineage_run_dataset_unique")
        ]
        indexes = [models.Index(fields=["dataset", "direction"], name="lineage_dataset_dir_idx")]

    def __str__(self) -> str:
        return f"{self.run} {self.direction} {self.dataset}"
