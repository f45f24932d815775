"""Authentication backends."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.accounts.models import User


class ModelPermissionBackend(ModelBackend):
    """Django's ModelBackend, whose set of a user's model permissions (what `perms` in templates
    and `has_perm` read, once per request) comes from one hand-written query instead of two
    ORM queries, the user's own permissions and then their groups'. Every page asks it: the
    navigation and the buttons a role may use."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:  # every permission: ModelBackend's query says so plainly
                return super().get_all_permissions(user_obj, obj)
            user_obj._perm_cache = _permission_names(user_obj.pk)
        return user_obj._perm_cache


def _permission_names(user_id: int) -> set[str]:
    quote = connection.ops.quote_name
    permissions = quote(Permission._meta.db_table)
    content_types = quote(ContentType._meta.db_table)
    own = quote(User.user_permissions.through._meta.db_table)
    memberships = quote(User.groups.through._meta.db_table)
    granted_to_groups = quote(Group.permissions.through._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ct.{quote('app_label')}, p.{quote('codename')} FROM {permissions} p "  # noqa: S608
            f"INNER JOIN {content_types} ct ON ct.{quote('id')} = p.{quote('content_type_id')} "
            f"WHERE p.{quote('id')} IN (SELECT o.{quote('permission_id')} FROM {own} o WHERE o.{quote('user_id')} = %s "
            f"UNION SELECT g.{quote('permission_id')} FROM {granted_to_groups} g "
            f"INNER JOIN {memberships} m ON m.{quote('group_id')} = g.{quote('group_id')} "
            f"WHERE m.{quote('user_id')} = %s)",
            [user_id, user_id],
        )
        return {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}
