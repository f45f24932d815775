"""Model permissions come from one query per request (apps.accounts.backends), with Django's
ModelBackend answers: the user's own permissions, their groups' (roles'), none when inactive."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no permission cache from earlier checks


@pytest.mark.parametrize("role", [None, "Data scientists", "ML engineers", "Approvers", "Platform admins"])
def test_a_roles_permissions_are_those_djangos_model_backend_gives(role):
    user = make_user(f"user-{role or 'none'}", role)
    user.user_permissions.add(Permission.objects.get(codename="view_team"))
    assert fresh(user).get_all_permissions() == ModelBackend().get_all_permissions(fresh(user))
    assert "accounts.view_team" in fresh(user).get_all_permissions()


def test_own_and_group_permissions_in_one_query_cached_for_the_request():
    user = make_user("both")
    user.user_permissions.add(Permission.objects.get(codename="view_team"))
    group = Group.objects.create(name="Reviewers of datasets")
    group.permissions.add(Permission.objects.get(codename="change_dataset"))
    user.groups.add(group)
    user = fresh(user)
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("accounts.view_team") and user.has_perm("catalog.change_dataset")
        assert not user.has_perm("catalog.delete_dataset")
    assert len(queries) == 1


def test_inactive_users_have_no_permissions_and_superusers_all():
    user = make_user("gone", "Platform admins")
    user.is_active = False
    user.save()
    assert fresh(user).get_all_permissions() == set()
    root = User.objects.create_superuser("root", password="x-long-password-1")  # noqa: S106
    assert len(fresh(root).get_all_permissions()) == Permission.objects.count()
