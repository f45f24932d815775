from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from guardian.admin import GuardedModelAdmin

from apps.accounts import services
from apps.accounts.models import PersonalAccessToken, Team, User
from apps.audit import services as audit


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = DjangoUserAdmin.fieldsets + (("Causeway", {"fields": ("display_name", "is_service_account")}),)
    list_display = ("username", "email", "display_name", "is_active", "is_staff", "is_service_account")
    AUDITED = ["username", "email", "display_name", "is_active", "is_staff", "is_superuser", "is_service_account"]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The admin saves the user, then its groups and permissions: one transaction and one
        # audit record for the whole change (roles and teams are groups).
        with transaction.atomic():
            before = self._state(User.objects.filter(pk=object_id).first()) if object_id else None
            response = super().changeform_view(request, object_id, form_url, extra_context)
            user = User.objects.filter(pk=object_id).first() if object_id else getattr(request, "_added_user", None)
            if request.method == "POST" and user is not None and self._state(user) != before:
                audit.record(
                    actor=request.user,
                    action="user.update" if object_id else "user.create",
                    target=user,
                    before=before,
                    after=self._state(user),
                )
        return response

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        request._added_user = obj  # per request: the admin instance is shared between threads

    def _state(self, user: User | None) -> dict | None:
        if user is None:
            return None
        state = audit.snapshot(user, self.AUDITED)
        state["groups"] = sorted(user.groups.values_list("name", flat=True))
        return state


@admin.register(Team)
class TeamAdmin(GuardedModelAdmin):
    """Teams are created through the service (it creates the backing group and audits)."""

    list_display = ("name", "slug", "lead", "created_at")
    search_fields = ("name", "slug")
    fields = ("name", "description", "lead")

    def save_model(self, request, obj, form, change):
        if change:
            with transaction.atomic():
                before = audit.snapshot(Team.objects.get(pk=obj.pk), ["name", "description", "lead"])
                super().save_model(request, obj, form, change)
                audit.record(
                    actor=request.user,
                    action="team.update",
                    target=obj,
                    before=before,
                    after=audit.snapshot(obj, ["name", "description", "lead"]),
                )
            return
        created = services.create_team(name=obj.name, description=obj.description, lead=obj.lead, by=request.user)
        obj.pk, obj.slug, obj.group_id = created.pk, created.slug, created.group_id

    def has_delete_permission(self, request, obj=None):
        return False  # teams own things; retire them by removing members instead


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_hash", "prefix", "user", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "prefix")

    def has_add_permission(self, request):
        return False  # tokens are created in the app, where the secret is shown once

    def has_change_permission(self, request, obj=None):
        return False  # revoking goes through the service (audited), from the profile page or API
