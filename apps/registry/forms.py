"""Forms of the registry pages. They only read and shape what the user typed; every rule is
checked by services (cards.clean_changes etc.), whose messages are shown inline."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.accounts.models import Team, User
from apps.registry import cards, services
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.page_selectors import MODEL_SORTS, STAGE_FILTERS
from apps.tracking.errors import TrackingError


class ModelListForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    owner = forms.IntegerField(required=False, min_value=1)
    team = forms.IntegerField(required=False, min_value=1)
    alias = forms.CharField(required=False, max_length=255)
    status = forms.ChoiceField(required=False, choices=[(stage, stage) for stage in STAGE_FILTERS])
    sort = forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in MODEL_SORTS.items()])

    def values(self) -> dict:
        """The cleaned choices, defaults for whatever did not validate."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "text": (data.get("q") or "").strip(),
            "owner_id": data.get("owner"),
            "team_id": data.get("team"),
            "alias": (data.get("alias") or "").strip(),
            "stage": data.get("status") or "",
            "sort": data.get("sort") or "updated",
        }


class AliasForm(forms.Form):
    alias = forms.CharField(max_length=255)
    version = forms.IntegerField(min_value=1)


class SliceImportForm(forms.Form):
    file = forms.FileField()
    mode = forms.ChoiceField(choices=[("replace", "Replace the table"), ("append", "Add to the table")], required=False)

    def fmt(self) -> str:
        name = self.cleaned_data["file"].name or ""
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""


class RegisterVersionForm(forms.Form):
    run = forms.CharField(max_length=32, label="Source run")
    path = forms.CharField(max_length=1000, label="Artifact path", initial="model")
    description = forms.CharField(required=False, widget=forms.Textarea, max_length=100_000)


# --- Card sections ------------------------------------------------------------------------------
# Each editable section: its inputs as (name, label, kind, help). Kinds: text, textarea.

_LINES_HELP = "One per line."
SECTION_FIELDS: dict[str, list[tuple[str, str, str, str]]] = {
    "model_details": [
        ("overview", "Overview", "textarea", "What the model does, in a few sentences. Markdown."),
        ("owners", "Owners", "textarea", "People or teams accountable for the model. " + _LINES_HELP),
        ("version", "Version", "text", ""),
        ("date", "Date", "text", "YYYY-MM-DD"),
        ("license", "License", "text", "An SPDX identifier, e.g. apache-2.0, or “proprietary”."),
        ("references", "References", "textarea", "Links to papers, docs, code. " + _LINES_HELP),
        ("citation", "Citation", "textarea", "BibTeX or plain text."),
    ],
    "intended_use": [
        ("primary_uses", "Primary uses", "textarea", "Markdown."),
        ("primary_users", "Primary users", "textarea", "Markdown."),
        ("out_of_scope_uses", "Out-of-scope uses", "textarea", "Markdown."),
    ],
    "training_data": [
        ("training_data", "Catalog dataset version ids", "text", "Comma-separated ids of catalog dataset versions."),
        ("training_data_notes", "Notes", "textarea", "Data not in the catalog, sampling, preprocessing. Markdown."),
    ],
    "training_procedure": [
        ("pipeline_source", "Pipeline source", "textarea", "Markdown."),
        ("code_version", "Code version", "text", "e.g. a git commit."),
        ("environment", "Environment", "textarea", "Markdown."),
        ("training_duration", "Training duration", "text", ""),
        ("hyperparameters", "Hyperparameters", "textarea", "One name=value per line."),
    ],
    "metrics": [
        (
            "metrics",
            "Metrics",
            "textarea",
            "One per line: name, value, threshold, CI low, CI high, slice (leave a cell empty to skip it).",
        ),
    ],
    **{
        section: [(section, cards.SECTIONS[section], "textarea", "Markdown.")]
        for section in ("factors", "evaluation_data", *cards.CONSIDERATION_SECTIONS)
    },
}
EDITABLE_SECTIONS = [section for section in cards.SECTIONS if section in SECTION_FIELDS]


def _number_text(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def section_initial(section: str, card) -> dict[str, str]:
    """The section's current values as the form's text."""
    if section in ("model_details", "intended_use"):
        return {key: str(value or "") for key, value in (getattr(card, section) or {}).items()}
    if section == "training_data":
        return {
            "training_data": ", ".join(str(pk) for pk in card.training_data or []),
            "training_data_notes": card.training_data_notes,
        }
    if section == "training_procedure":
        procedure = {**cards.empty_sections()["training_procedure"], **(card.training_procedure or {})}
        values = {
            key: str(procedure.get(key) or "") for key in cards.TRAINING_PROCEDURE_KEYS if key != "hyperparameters"
        }
        values["hyperparameters"] = "\n".join(f"{k}={v}" for k, v in (procedure.get("hyperparameters") or {}).items())
        return values
    if section == "metrics":
        lines = []
        for row in card.metrics or []:
            cells = [row.get("name", "")] + [
                _number_text(row.get(key)) for key in ("value", "threshold", "ci_low", "ci_high")
            ]
            cells.append(row.get("slice") or "")
            lines.append(", ".join(cells).rstrip(", "))
        return {"metrics": "\n".join(lines)}
    return {section: getattr(card, section)}


def section_fields(section: str, values: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"name": name, "label": label, "kind": kind, "help": help_text, "value": values.get(name, "")}
        for name, label, kind, help_text in SECTION_FIELDS[section]
    ]


def section_changes(section: str, data) -> dict[str, Any]:
    """The update_card `changes` for one posted section. Shapes the text only (raises
    cards.CardInputError for text it cannot read); the service checks the values."""
    get = lambda name: (data.get(name) or "").replace("\r\n", "\n")  # noqa: E731
    if section in ("model_details", "intended_use"):
        keys = cards.MODEL_DETAILS_KEYS if section == "model_details" else cards.INTENDED_USE_KEYS
        return {section: {key: get(key) for key in keys}}
    if section == "training_data":
        ids = [part.strip() for part in get("training_data").replace("\n", ",").split(",") if part.strip()]
        return {"training_data": ids, "training_data_notes": get("training_data_notes")}
    if section == "training_procedure":
        hyper = {}
        for number, line in enumerate(get("hyperparameters").splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise cards.CardInputError(f"Hyperparameters line {number}: write name=value.")
            hyper[key.strip()] = value.strip()
        values = {key: get(key) for key in cards.TRAINING_PROCEDURE_KEYS if key != "hyperparameters"}
        return {"training_procedure": {**values, "hyperparameters": hyper}}
    if section == "metrics":
        rows = []
        for number, line in enumerate(get("metrics").splitlines(), start=1):
            if not line.strip():
                continue
            cells = [cell.strip() for cell in line.split(",")]
            if len(cells) > 6:
                raise cards.CardInputError(
                    f"Metrics line {number}: at most six cells (name, value, threshold, CI low, CI high, slice)."
                )
            cells += [""] * (6 - len(cells))
            rows.append(dict(zip(cards.METRIC_KEYS, cells, strict=True)))
        return {"metrics": rows}
    return {section: get(section)}


# --- Settings -----------------------------------------------------------------------------------


class ModelSettingsForm(forms.Form):
    name = forms.CharField(max_length=256)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), max_length=100_000)
    visibility = forms.ChoiceField(choices=RegisteredModel.Visibility.choices)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="No team")

    def __init__(self, *args, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        if teams is not None:
            self.fields["team"].queryset = teams

    def clean_name(self) -> str:
        # MLflow's name rules, as the service checks them, so the message sits by the field.
        try:
            return services.model_name(self.cleaned_data["name"])
        except TrackingError as exc:
            raise forms.ValidationError(exc.message)

    def clean_description(self) -> str:
        return (self.cleaned_data.get("description") or "").replace("\r\n", "\n")


class ModelShareForm(forms.Form):
    username = forms.CharField(required=False, max_length=150, label="User name")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, empty_label="— or a team —")
    level = forms.ChoiceField(
        required=False,
        initial="view",
        choices=[
            ("view", "View"),
            ("change", "Change: register versions, edit cards, move aliases"),
            ("request_deployment", "Request deployment"),
        ],
    )

    def __init__(self, *args, active_only: bool = True, **kwargs):
        # Taking a share back also works for someone who has since left (an inactive user).
        super().__init__(*args, **kwargs)
        self.active_only = active_only

    def clean(self):
        data = super().clean()
        username, team = (data.get("username") or "").strip(), data.get("team")
        if bool(username) == bool(team):
            raise forms.ValidationError("Choose one user or one team.")
        if username:
            users = User.objects.filter(username=username)
            user = (users.filter(is_active=True) if self.active_only else users).first()
            if user is None:
                raise forms.ValidationError(f"No active user named {username!r}.")
            data["user"] = user
        return data


class StageTransitionForm(forms.Form):
    stage = forms.ChoiceField(choices=ModelVersion.Stage.choices)
    archive_existing_versions = forms.BooleanField(
        required=False, label="Move other versions in this stage to Archived"
    )
