"""Forms of the value pages. They shape what the user typed; the rules (permissions, currency,
periods, evidence, what may be linked) are checked by services, whose messages come back inline."""

from __future__ import annotations

from django import forms

from apps.accounts.models import Team
from apps.value.models import STAGE_ORDER, CostEntry, Stage, UseCase

DATE = forms.DateInput(attrs={"type": "date"})


class PortfolioFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, to_field_name="slug")
    stage = forms.ChoiceField(required=False, choices=[("", "Any stage"), *Stage.choices])
    start = forms.DateField(required=False, widget=DATE)
    end = forms.DateField(required=False, widget=DATE)

    def values(self) -> dict:
        """The filters that validated (a bad one is ignored, never a 500)."""
        if self.is_valid():
            data = dict(self.cleaned_data)
        else:
            data = {key: self.cleaned_data.get(key) for key in self.fields if key not in self.errors}
        data.setdefault("q", "")
        data["q"] = (data.get("q") or "").strip()
        data["stage"] = data.get("stage") or ""
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            data["start"], data["end"] = data["end"], data["start"]
        return {key: data.get(key) for key in ("q", "team", "stage", "start", "end")}


class UseCaseForm(forms.ModelForm):
    class Meta:
        model = UseCase
        fields = [
            "name",
            "description",
            "sponsor",
            "team",
            "visibility",
            "kpi",
            "currency",
            "expected_annual_value",
            "value_assumptions",
            "value_per_prediction",
            "target_production_date",
            "target_payback_date",
            "risks",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 4}),
            "value_assumptions": forms.Textarea(attrs={"rows": 3}),
            "risks": forms.Textarea(attrs={"rows": 3}),
            "target_production_date": DATE,
            "target_payback_date": DATE,
        }

    def __init__(self, *args, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        if teams is not None:
            self.fields["team"].queryset = teams
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)


class StageForm(forms.Form):
    stage = forms.ChoiceField(choices=[(value, Stage(value).label) for value in STAGE_ORDER])
    note = forms.CharField(required=False, max_length=2000)


class CostForm(forms.Form):
    category = forms.ChoiceField(
        choices=CostEntry.Category.choices,
        widget=forms.Select(attrs={"class": "form-select form-select-sm", "id": "cost-category"}),
    )
    period_start = forms.DateField(widget=DATE)
    period_end = forms.DateField(widget=DATE)
    amount = forms.DecimalField(max_digits=16, decimal_places=2, min_value=0)
    note = forms.CharField(required=False, max_length=5000)


class ValueForm(forms.Form):
    period_start = forms.DateField(widget=DATE)
    period_end = forms.DateField(widget=DATE)
    amount = forms.DecimalField(max_digits=16, decimal_places=2, help_text="Negative when the model lost money.")
    evidence = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=10000, required=False)
    evidence_url = forms.URLField(required=False, max_length=1000, assume_scheme="https")


class ImportForm(forms.Form):
    file = forms.FileField()


class LinksForm(forms.Form):
    datasets = forms.ModelMultipleChoiceField(queryset=None, required=False)
    experiments = forms.ModelMultipleChoiceField(queryset=None, required=False)
    registered_models = forms.ModelMultipleChoiceField(queryset=None, required=False, label="Registered models")
    endpoints = forms.ModelMultipleChoiceField(queryset=None, required=False)

    def __init__(self, *args, choices: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for name, queryset in choices.items():
            self.fields[name].queryset = queryset
            self.fields[name].widget.attrs.update({"size": 6, "class": "form-select form-select-sm"})
