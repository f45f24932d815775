"""Query-string forms of the tracking pages: they only read and clean what the user chose."""

from __future__ import annotations

import re

from django import forms

from apps.accounts.models import Team, User
from apps.tracking.models import Experiment
from apps.tracking.selectors import EXPERIMENT_SORTS

COLUMN_KINDS = ("params", "metrics", "tags")
# Run attributes the table can sort by, as MLflow's order_by names them.
ATTRIBUTE_SORTS = {"run_name": "Run", "status": "Status", "start_time": "Started", "end_time": "Ended"}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ExperimentListForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    owner = forms.IntegerField(required=False, min_value=1)
    team = forms.IntegerField(required=False, min_value=1)
    deleted = forms.BooleanField(required=False)
    sort = forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in EXPERIMENT_SORTS.items()])

    def values(self) -> dict:
        """The cleaned choices, defaults for whatever did not validate."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "text": (data.get("q") or "").strip(),
            "owner_id": data.get("owner"),
            "team_id": data.get("team"),
            "show_deleted": bool(data.get("deleted")),
            "sort": data.get("sort") or "activity",
        }


class RunTableForm(forms.Form):
    filter = forms.CharField(required=False, max_length=4000)
    lifecycle = forms.ChoiceField(
        required=False, choices=[("active", "Active runs"), ("deleted", "Deleted runs"), ("all", "All runs")]
    )
    sort = forms.CharField(required=False, max_length=300)
    dir = forms.ChoiceField(required=False, choices=[("desc", "Descending"), ("asc", "Ascending")])

    def values(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "filter": (data.get("filter") or "").strip(),
            "lifecycle": data.get("lifecycle") or "active",
            "sort": parse_column(data.get("sort") or ""),
            "descending": (data.get("dir") or "desc") == "desc",
        }


def parse_column(value: str) -> tuple[str, str] | None:
    """`"metrics.val.loss"` → `("metrics", "val.loss")`; attributes and the three key kinds only."""
    kind, _, key = (value or "").partition(".")
    if not key or (kind not in COLUMN_KINDS and not (kind == "attributes" and key in ATTRIBUTE_SORTS)):
        return None
    return kind, key


def chosen_columns(query, keys: dict[str, list[str]], *, default_per_kind: int = 4) -> list[tuple[str, str]]:
    """The `col` values of the query string that name keys the experiment has; until the user
    has chosen (`cols` marks a submitted chooser), its first few metrics and params."""
    if "cols" not in query and "col" not in query:
        return [("metrics", key) for key in keys["metrics"][:default_per_kind]] + [
            ("params", key) for key in keys["params"][:default_per_kind]
        ]
    known = {(kind, key) for kind in COLUMN_KINDS for key in keys.get(kind, [])}
    chosen = []
    for value in query.getlist("col"):
        column = parse_column(value)
        if column in known and column not in chosen:
            chosen.append(column)
    return chosen


def order_by_clause(column: tuple[str, str], *, descending: bool) -> str:
    """MLflow's order_by syntax for a column, quoting keys that are not plain identifiers."""
    kind, key = column
    if not _PLAIN_KEY.fullmatch(key):
        key = "`" + key.replace("`", "") + "`"
    return f"{kind}.{key} {'DESC' if descending else 'ASC'}"


class ExperimentSettingsForm(forms.Form):
    name = forms.CharField(max_length=500)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), help_text="Markdown.")
    visibility = forms.ChoiceField(choices=Experiment.Visibility.choices)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="No team")

    def __init__(self, *args, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        if teams is not None:
            self.fields["team"].queryset = teams


class ExperimentShareForm(forms.Form):
    username = forms.CharField(required=False, max_length=150, label="User name")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, empty_label="— or a team —")
    permission = forms.ChoiceField(
        choices=[("view_experiment", "Can view"), ("change_experiment", "Can view and log runs")]
    )

    def clean(self):
        data = super().clean()
        username, team = (data.get("username") or "").strip(), data.get("team")
        if bool(username) == bool(team):
            raise forms.ValidationError("Choose one user or one team.")
        if username:
            user = User.objects.filter(username=username, is_active=True).first()
            if user is None:
                raise forms.ValidationError(f"No active user named {username!r}.")
            data["user"] = user
        return data
