"""Experiment tracking, shaped like MLflow's entities so its REST API maps one to one.

Times are integers in milliseconds since the epoch, as MLflow's protos carry them, so what a
client logs comes back bit for bit. Visibility follows the catalog's rule: owner, team and
visibility are columns on the experiment, explicit shares are guardian direct-FK tables.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.models import Team
from apps.catalog.models import DatasetVersion

DEFAULT_EXPERIMENT_ID = 0


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class Experiment(models.Model):
    class Visibility(models.TextChoices):
        ORGANISATION = "organisation", "Everyone in the organisation"
        PRIVATE = "private", "Owner, team and those it is shared with"

    name = models.CharField(max_length=500, unique=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    # Null only for the shared Default experiment (id 0) that MLflow clients log to when none is set.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="experiments_owned"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    lifecycle_stage = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    artifact_location = models.CharField(max_length=1000, blank=True)
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()

    class Meta:
        ordering = ["-last_update_time"]
        indexes = [
            models.Index(fields=["visibility", "lifecycle_stage"], name="experiment_visibility_idx"),
            models.Index(fields=["owner", "lifecycle_stage"], name="experiment_owner_idx"),
            models.Index(fields=["team", "lifecycle_stage"], name="experiment_team_idx"),
            models.Index(fields=["last_update_time"], name="experiment_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.lifecycle_stage == Lifecycle.DELETED


class ExperimentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE)


class ExperimentGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Experiment, on_delete=models.CASCADE)


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_key_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


def new_run_uuid() -> str:
    return uuid.uuid4().hex


class Run(models.Model):
    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        SCHEDULED = "SCHEDULED", "Scheduled"
        FINISHED = "FINISHED", "Finished"
        FAILED = "FAILED", "Failed"
        KILLED = "KILLED", "Killed"

    run_uuid = models.CharField(max_length=32, unique=True, default=new_run_uuid)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    # The token's user, never what the client claims (MLflow's `user_id` is ignored).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    start_time = models.BigIntegerField()
    end_time = models.BigIntegerField(null=True, blank=True)
    deleted_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    artifact_uri = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-start_time", "-id"]
        indexes = [
            # search_runs' default order within an experiment, and the runs table.
            models.Index(
                fields=["experiment", "lifecycle_stage", "-start_time", "-id"], name="run_experiment_start_idx"
            ),
            models.Index(fields=["experiment", "status"], name="run_experiment_status_idx"),
            models.Index(fields=["user", "-start_time"], name="run_user_start_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.run_uuid

    @property
    def is_deleted(self) -> bool:
        return self.lifecycle_stage == Lifecycle.DELETED


class Param(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        # No (key, value) index: values run to 6,000 characters, past PostgreSQL's btree row
        # limit (~2.7 KB). Searches probe (run, key) from the metric or run side instead.
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_key_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        # No (key, value) index either: tag values run to 8,000 characters (see Param).
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_key_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class Metric(models.Model):
    """One logged point. NaN is kept as is_nan with a null value: SQLite cannot store NaN."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField(null=True)
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["run", "key", "step", "timestamp"], name="metric_history_idx")]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}"


class LatestMetric(models.Model):
    """The newest point of each metric of a run (largest step, then timestamp, then value, as
    MLflow defines it), kept in the same transaction as the points so search and the runs table
    never scan the history."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    # The run's experiment, copied (runs never move): search walks (experiment, key, value) in
    # value order, so a small experiment is not searched through a big one's metrics.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField(null=True)
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latest_metric_key_unique")]
        indexes = [models.Index(fields=["experiment", "key", "value"], name="latestmetric_exp_key_val_idx")]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}"


class RunInput(models.Model):
    """A dataset a run consumed (`mlflow.log_input`), matched to a catalog version by digest or
    source when one fits."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)
    context = models.CharField(max_length=250, blank=True, help_text="mlflow.data.context, e.g. training.")
    tags = models.JSONField(default=dict, blank=True)
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="run_inputs"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name", "digest"], name="run_input_unique")]

    def __str__(self) -> str:
        return self.name


class LoggedModel(models.Model):
    """MLflow 3's logged model (`mlflow.<flavor>.log_model`): a model's artifacts with its own
    id, usually tied to the run that produced it."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        READY = "READY", "Ready"
        FAILED = "FAILED", "Failed"

    model_id = models.CharField(max_length=40, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models")
    name = models.CharField(max_length=500)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    status_message = models.TextField(blank=True)
    model_type = models.CharField(max_length=500, blank=True)
    source_run_uuid = models.CharField(max_length=32, blank=True)
    artifact_location = models.CharField(max_length=1000)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    lifecycle_stage = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    params = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-creation_timestamp"]
        indexes = [models.Index(fields=["experiment", "-creation_timestamp"], name="logged_model_experiment_idx")]

    def __str__(self) -> str:
        return self.name
