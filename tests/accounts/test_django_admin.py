"""The Django admin for platform admins: guardian's object-permission pages on every governed
model, audited; other people do not get in."""

import pytest
from django.urls import reverse

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.registry.models import RegisteredModelUserObjectPermission

pytestmark = pytest.mark.django_db

GOVERNED = [
    "catalog_dataset",
    "tracking_experiment",
    "registry_registeredmodel",
    "deployments_environment",
    "deployments_endpoint",
]


@pytest.fixture
def platform_admin(users):
    # Through the service, as the users page does: staff status follows the admin role.
    accounts.set_roles(user=users["admin"], roles=["Platform admins"], by=users["admin"])
    users["admin"].refresh_from_db()
    return users["admin"]


@pytest.mark.parametrize("model", GOVERNED)
def test_platform_admins_see_every_governed_model_in_the_django_admin(client, platform_admin, objects, model):
    client.force_login(platform_admin)
    assert client.get(reverse(f"admin:{model}_changelist")).status_code == 200


@pytest.mark.parametrize("kind", ["dataset", "experiment", "model", "endpoint", "environment"])
def test_guardian_object_permission_pages_open_for_each_governed_model(client, platform_admin, objects, kind):
    obj = objects[kind]
    client.force_login(platform_admin)
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_permissions", args=[obj.pk])
    assert client.get(url).status_code == 200


def test_object_permissions_changed_in_the_django_admin_are_audited(client, platform_admin, objects, users):
    model = objects["model"]
    client.force_login(platform_admin)
    url = reverse("admin:registry_registeredmodel_permissions_manage_user", args=[model.pk, users["nobody"].pk])
    response = client.post(url, {"permissions": ["view_registeredmodel"]})
    assert response.status_code == 302
    assert RegisteredModelUserObjectPermission.objects.filter(content_object=model, user=users["nobody"]).exists()
    event = AuditEvent.objects.get(action="admin.object_permissions_changed")
    assert event.object_id == str(model.pk)
    assert event.after == {"user": "nobody", "team": None, "group": None, "permissions": ["view_registeredmodel"]}


def test_people_without_the_admin_role_do_not_get_into_the_django_admin(client, users, objects):
    client.force_login(users["scientist"])
    response = client.get(reverse("admin:registry_registeredmodel_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_governed_objects_cannot_be_added_or_deleted_in_the_django_admin(client, platform_admin, objects):
    client.force_login(platform_admin)
    assert client.get(reverse("admin:registry_registeredmodel_add")).status_code == 403
    model = objects["model"]
    assert client.get(reverse("admin:registry_registeredmodel_delete", args=[model.pk])).status_code == 403
