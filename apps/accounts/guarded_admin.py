"""The Django admin for governed models (datasets, experiments, models, environments,
endpoints, use cases): platform admins see every object and manage its object permissions
with guardian's admin pages. The objects' own fields are read-only here: they change through
the apps' pages and services, which validate and audit. Permission changes made in the admin
are audited too (one event per grantee and object, in the same transaction)."""

from __future__ import annotations

from django.db import transaction
from guardian.admin import AdminGroupObjectPermissionsForm, AdminUserObjectPermissionsForm, GuardedModelAdmin

from apps.accounts.selectors import is_platform_admin
from apps.audit import services as audit


class _AuditedPermissionsMixin:
    actor = None  # set per request by GovernedObjectAdmin

    def _grantee_label(self) -> dict:
        user = getattr(self, "user", None)
        group = getattr(self, "group", None)
        team = getattr(group, "team", None) if group is not None else None
        return {
            "user": user.get_username() if user is not None else None,
            "team": team.name if team is not None else None,
            "group": group.name if group is not None and team is None else None,
        }

    def save_obj_perms(self) -> None:
        before = sorted(self.get_obj_perms_field_initial())
        with transaction.atomic():
            super().save_obj_perms()
            after = sorted(self.cleaned_data[self.get_obj_perms_field_name()])
            if after != before:
                grantee = self._grantee_label()
                audit.record(
                    actor=self.actor,
                    action="admin.object_permissions_changed",
                    target=self.obj,
                    before={**grantee, "permissions": before},
                    after={**grantee, "permissions": after},
                )


class AuditedUserPermissionsForm(_AuditedPermissionsMixin, AdminUserObjectPermissionsForm):
    pass


class AuditedGroupPermissionsForm(_AuditedPermissionsMixin, AdminGroupObjectPermissionsForm):
    pass


class GovernedObjectAdmin(GuardedModelAdmin):
    """Platform admins only (superusers and the Platform admins role), read-only fields,
    no add or delete (creation and deletion go through the apps), audited object permissions."""

    def has_module_permission(self, request) -> bool:
        return is_platform_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_platform_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        # guardian's object-permission pages ask for change permission on the model.
        return is_platform_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        opts = self.model._meta
        return [field.name for field in opts.concrete_fields] + [field.name for field in opts.many_to_many]

    def get_obj_perms_manage_user_form(self, request):
        return type("AuditedUserPermissionsForm", (AuditedUserPermissionsForm,), {"actor": request.user})

    def get_obj_perms_manage_group_form(self, request):
        return type("AuditedGroupPermissionsForm", (AuditedGroupPermissionsForm,), {"actor": request.user})
