from django import forms
from django.conf import settings

from apps.accounts.models import Team
from apps.catalog.models import Dataset, Domain


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, help_text="Markdown.")
    classification = forms.ChoiceField(choices=Dataset.Classification.choices, initial=Dataset.Classification.INTERNAL)
    visibility = forms.ChoiceField(choices=Dataset.Visibility.choices, initial=Dataset.Visibility.ORGANISATION)
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False)
    domain = forms.ModelChoiceField(queryset=Domain.objects.all(), required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. credit, monthly.")
    source_kind = forms.ChoiceField(choices=Dataset.SourceKind.choices, initial=Dataset.SourceKind.UPLOAD)
    source_uri = forms.CharField(
        max_length=1000, required=False, help_text="For external data: s3://…, postgresql://…/table"
    )
    format = forms.ChoiceField(choices=Dataset.Format.choices, initial=Dataset.Format.CSV)
    documentation_links = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One http(s) link per line."
    )
    file = forms.FileField(required=False, help_text="CSV, Parquet or JSON lines. Profiled in the background.")
    server_path = forms.CharField(max_length=1000, required=False, help_text="A file under the server's data root.")

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean_documentation_links(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["documentation_links"].splitlines() if line.strip()]


class VersionUploadForm(forms.Form):
    file = forms.FileField(required=False)
    server_path = forms.CharField(max_length=1000, required=False)
    note = forms.CharField(max_length=500, required=False)

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("server_path")):
            raise forms.ValidationError("Upload a file or give a server path (one of the two).")
        return data


class AccessRequestForm(forms.Form):
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), min_length=10)
    duration_days = forms.IntegerField(min_value=1, max_value=settings.CATALOG_MAX_ACCESS_DAYS, initial=90)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
