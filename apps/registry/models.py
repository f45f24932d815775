"""The model registry: registered models, their numbered versions, aliases and model cards.

Shaped like MLflow's registry so its REST API maps one to one (times are integers in ms since
the epoch, stages are MLflow's legacy names). A version is the arrow from a tracking run (and
MLflow 3 logged model) to what gets deployed; `storage_location` is the mlflow-artifacts URI of
its files, served by the tracking app's artifact proxy. Visibility follows the catalog's and
tracking's rule: owner, team and visibility columns plus guardian direct-FK share tables.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.models import Team
from apps.tracking.models import LoggedModel, Run


class RegisteredModel(models.Model):
    class Visibility(models.TextChoices):
        ORGANISATION = "organisation", "Everyone in the organisation"
        PRIVATE = "private", "Owner, team and those it is shared with"

    name = models.CharField(max_length=256, db_index=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_models")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="registered_models")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    class Meta:
        ordering = ["name"]
        permissions = [("request_deployment_registeredmodel", "Can request deployment")]
        constraints = [
            # "Churn" and "churn" would be two models to the database but one to the people
            # reading a deployment request: names are unique whatever their case.
            models.UniqueConstraint(Lower("name"), name="registered_model_name_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["visibility", "name"], name="regmodel_visibility_name_idx"),
            models.Index(fields=["owner", "name"], name="regmodel_owner_name_idx"),
            models.Index(fields=["team", "name"], name="regmodel_team_name_idx"),
            models.Index(fields=["last_updated_timestamp"], name="regmodel_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class RegisteredModelUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)


class RegisteredModelGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)


class RegisteredModelTag(models.Model):
    # No (key, value) index: values run to 100,000 characters, past PostgreSQL's btree row limit.
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "key"], name="registered_model_tag_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        PENDING_REGISTRATION = "PENDING_REGISTRATION", "Pending registration"
        FAILED_REGISTRATION = "FAILED_REGISTRATION", "Failed registration"
        READY = "READY", "Ready"

    class Stage(models.TextChoices):
        # MLflow's legacy stages, spelled as its API returns them.
        NONE = "None", "None"
        STAGING = "Staging", "Staging"
        PRODUCTION = "Production", "Production"
        ARCHIVED = "Archived", "Archived"

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    # What the client passed (`models:/m-…`, `runs:/<run>/model`, `mlflow-artifacts:/…`).
    source = models.CharField(max_length=1000)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions")
    logged_model = models.ForeignKey(
        LoggedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions"
    )
    # The resolved mlflow-artifacts URI whose files are the model (what get-download-uri answers).
    storage_location = models.CharField(max_length=1000)
    run_link = models.CharField(max_length=1000, blank=True)
    # From the MLmodel file when there is one: the main flavor (e.g. sklearn), every flavor,
    # and the signature's inputs / outputs as parsed JSON.
    flavor = models.CharField(max_length=100, blank=True)
    flavors = models.JSONField(default=list, blank=True)
    signature_inputs = models.JSONField(null=True, blank=True)
    signature_outputs = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.READY)
    status_message = models.TextField(blank=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="model_versions")
    current_stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NONE)
    # MLflow keeps deleted versions (so numbers are never reused) but no longer shows them.
    is_deleted = models.BooleanField(default=False)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    class Meta:
        ordering = ["registered_model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="model_version_number_unique")
        ]
        indexes = [
            models.Index(fields=["registered_model", "is_deleted", "current_stage"], name="modelversion_stage_idx"),
            models.Index(fields=["run"], name="modelversion_run_idx"),
            models.Index(fields=["last_updated_timestamp"], name="modelversion_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"


class ModelVersionTag(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "key"], name="model_version_tag_key_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class ModelAlias(models.Model):
    """A named pointer (`champion`, `challenger`) from a model to one of its own versions."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=255)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        ordering = ["alias"]
        constraints = [models.UniqueConstraint(fields=["registered_model", "alias"], name="model_alias_unique")]

    def __str__(self) -> str:
        return f"{self.registered_model_id}@{self.alias}"

    def clean(self) -> None:
        if self.model_version_id and self.model_version.registered_model_id != self.registered_model_id:
            raise ValidationError("An alias can only point at a version of its own model.")


def _empty_model_details() -> dict:
    return {"overview": "", "owners": "", "version": "", "date": "", "license": "", "references": "", "citation": ""}


def _empty_intended_use() -> dict:
    return {"primary_uses": "", "primary_users": "", "out_of_scope_uses": ""}


def _empty_training_procedure() -> dict:
    return {
        "pipeline_source": "",
        "code_version": "",
        "environment": "",
        "hyperparameters": {},
        "training_duration": "",
    }


class ModelCard(models.Model):
    """The model card of one version (Mitchell et al., "Model Cards for Model Reporting"),
    one field per section so it can be edited, diffed in the audit trail and scored for
    completeness (apps.registry.cards). Text is Markdown, sanitized when rendered."""

    model_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="card")
    # {overview, owners, version, date, license, references, citation}
    model_details = models.JSONField(default=_empty_model_details, blank=True)
    # {primary_uses, primary_users, out_of_scope_uses}
    intended_use = models.JSONField(default=_empty_intended_use, blank=True)
    factors = models.TextField(blank=True)
    # Catalog DatasetVersion ids the model was trained on (filled from the run's inputs).
    training_data = models.JSONField(default=list, blank=True)
    training_data_notes = models.TextField(blank=True)
    # {pipeline_source, code_version, environment, hyperparameters {name: value}, training_duration}
    training_procedure = models.JSONField(default=_empty_training_procedure, blank=True)
    evaluation_data = models.TextField(blank=True)
    # [{name, value, threshold, ci_low, ci_high, slice}]
    metrics = models.JSONField(default=list, blank=True)
    # [{slice, group, metric, value}]
    quantitative_analysis = models.JSONField(default=list, blank=True)
    fairness_considerations = models.TextField(blank=True)
    ethical_considerations = models.TextField(blank=True)
    risks_and_mitigations = models.TextField(blank=True)
    caveats_and_recommendations = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()

    def __str__(self) -> str:
        return f"Model card of {self.model_version}"
