"""`manage.py scale_demo` (the load test's data): copies keep owner, visibility and shares."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestScaleDemo:
    def test_scaling_by_three_adds_two_copies_of_everything_with_the_same_owner_and_visibility(self, world):
        from apps.catalog.models import Dataset
        from apps.deployments.models import DeploymentRequest
        from apps.registry.models import ModelVersion
        from apps.tracking.models import LatestMetric, Run

        before = {
            model: model.objects.count() for model in (Dataset, Run, ModelVersion, DeploymentRequest, LatestMetric)
        }
        call_command("scale_demo", factor=3, stdout=io.StringIO())
        for model, count in before.items():
            assert model.objects.count() == 3 * count, model.__name__
        copy = Dataset.objects.get(slug=f"{world.dataset.slug}-x2")
        assert (copy.owner_id, copy.visibility) == (world.owner.pk, world.dataset.visibility)
        assert copy.current_version.columns.count() == world.dataset.current_version.columns.count()

    def test_a_scaled_database_is_not_scaled_twice(self, world):
        call_command("scale_demo", factor=2, stdout=io.StringIO())
        with pytest.raises(CommandError, match="scaled already"):
            call_command("scale_demo", factor=2)

    def test_copies_keep_their_originals_shares(self, world):
        from apps.accounts import sharing
        from apps.catalog.selectors import visible_datasets
        from apps.registry.selectors import visible_models
        from apps.tracking.selectors import visible_experiments

        shared = (world.dataset, world.experiment, world.model)
        for obj in shared:
            shareable = sharing.shareable_for_object(obj)
            sharing.grant(shareable=shareable, obj=obj, by=world.owner, level="view", user=world.stranger)
        call_command("scale_demo", factor=3, stdout=io.StringIO())
        assert set(
            visible_datasets(world.stranger).filter(slug__startswith=world.dataset.slug).values_list("slug", flat=True)
        ) >= {
            world.dataset.slug,
            f"{world.dataset.slug}-x2",
            f"{world.dataset.slug}-x3",
        }
        names = set(visible_experiments(world.stranger).values_list("name", flat=True))
        assert {f"{world.experiment.name} x2", f"{world.experiment.name} x3"} <= names
        models = set(visible_models(world.stranger).values_list("name", flat=True))
        assert {f"{world.model.name}-x2", f"{world.model.name}-x3"} <= models
        copy = type(world.model).objects.get(name=f"{world.model.name}-x2")
        [grant] = sharing.read_grants(sharing.shareable_for_object(copy), copy)
        assert grant.grantee == world.stranger and grant.levels == ["view"]
