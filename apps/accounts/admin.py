from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from guardian.admin import GuardedModelAdmin

from apps.accounts.models import PersonalAccessToken, Team, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = DjangoUserAdmin.fieldsets + (("Causeway", {"fields": ("display_name", "is_service_account")}),)
    list_display = ("username", "email", "display_name", "is_active", "is_staff", "is_service_account")


@admin.register(Team)
class TeamAdmin(GuardedModelAdmin):
    list_display = ("name", "slug", "lead", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("group",)


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_hash", "prefix", "user", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "prefix")

    def has_add_permission(self, request):
        return False  # tokens are created in the app, where the secret is shown once
