import re

from django import forms
from django.conf import settings


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “laptop mlflow client”.")
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=settings.TOKEN_MAX_EXPIRY_DAYS,
        initial=settings.TOKEN_DEFAULT_EXPIRY_DAYS,
        label="Expires in (days)",
    )


class UsernamesField(forms.CharField):
    """Usernames separated by commas or spaces, resolved to active accounts (an unknown or
    inactive name is an error, not silently skipped)."""

    def __init__(self, *args, active_only: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.active_only = active_only

    def clean(self, value):
        from apps.accounts.models import User

        value = super().clean(value)
        names = [name for name in re.split(r"[\s,;]+", value or "") if name]
        if len(names) > 100:
            raise forms.ValidationError("At most 100 usernames at once.")
        people = User.objects.filter(username__in=names)
        if self.active_only:
            people = people.filter(is_active=True)
        found = {user.username.lower(): user for user in people}
        missing = [name for name in names if name.lower() not in found]
        if missing:
            raise forms.ValidationError(f"No {'active ' if self.active_only else ''}user called: {', '.join(missing)}.")
        return list({found[name.lower()].pk: found[name.lower()] for name in names}.values())


def _team_field(**kwargs) -> forms.ModelMultipleChoiceField:
    from apps.accounts.models import Team

    return forms.ModelMultipleChoiceField(
        queryset=Team.objects.order_by("name"), required=False, widget=forms.SelectMultiple(attrs={"size": 5}), **kwargs
    )


class ShareForm(forms.Form):
    """Grant one level on one (or, in the bulk form, several) objects to users and/or teams."""

    usernames = UsernamesField(required=False, label="Users", help_text="Usernames, separated by commas.")
    level = forms.ChoiceField()

    def __init__(self, *args, shareable, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teams"] = _team_field(label="Teams")
        self.fields["level"].choices = [(level.key, level.label) for level in shareable.levels]
        self.order_fields(["usernames", "teams", "level"])
        self.shareable = shareable

    def clean(self):
        data = super().clean()
        if not data.get("usernames") and not data.get("teams"):
            raise forms.ValidationError("Choose at least one user or team.")
        level = data.get("level")
        if level and data.get("usernames") and self.shareable.level(level).teams_only:
            self.add_error("usernames", "This level is given to teams only.")
        return data


class BulkShareForm(ShareForm):
    action = forms.ChoiceField(choices=[("grant", "Grant"), ("revoke", "Revoke")], initial="grant")

    def __init__(self, *args, objects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["objects"] = forms.ModelMultipleChoiceField(
            queryset=objects, widget=forms.SelectMultiple(attrs={"size": 10}), label="Objects"
        )
        self.order_fields(["objects", "usernames", "teams", "level", "action"])


class RevokeForm(forms.Form):
    grantee = forms.RegexField(regex=r"^(user|team):\d+$")
    level = forms.CharField(required=False)


class UserFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    role = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), ("active", "Active"), ("inactive", "Deactivated")]
    )

    def __init__(self, *args, **kwargs):
        from apps.accounts.roles import ROLE_SLUGS

        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [("", "Any role"), *((slug, name) for name, slug in ROLE_SLUGS.items())] + [
            ("none", "No role")
        ]


def _roles_field() -> forms.MultipleChoiceField:
    from apps.accounts.roles import ALL_ROLES

    return forms.MultipleChoiceField(
        choices=[(role, role) for role in ALL_ROLES], required=False, widget=forms.CheckboxSelectMultiple
    )


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    display_name = forms.CharField(max_length=150, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"] = _roles_field()
        self.fields["teams"] = _team_field()


class RolesForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"] = _roles_field()


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    lead = UsernamesField(required=False, help_text="The lead's username (optional).")

    def clean_lead(self):
        leads = self.cleaned_data["lead"]
        if len(leads) > 1:
            raise forms.ValidationError("A team has one lead.")
        return leads[0] if leads else None


class TeamMemberForm(forms.Form):
    # Inactive people can still be taken off a team; adding or naming them lead cannot.
    username = UsernamesField(label="Username", active_only=False)
    action = forms.ChoiceField(choices=[("add", "Add"), ("remove", "Remove"), ("lead", "Make lead")])

    def clean_username(self):
        found = self.cleaned_data["username"]
        if len(found) != 1:
            raise forms.ValidationError("One username.")
        return found[0]

    def clean(self):
        data = super().clean()
        person = data.get("username")
        if person is not None and not person.is_active and data.get("action") in ("add", "lead"):
            self.add_error("username", f"{person.username} is deactivated.")
        return data
