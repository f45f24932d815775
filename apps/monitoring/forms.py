"""The endpoint's monitoring settings form (drift thresholds, window, payload retention)."""

from __future__ import annotations

from django import forms

from apps.catalog.models import DatasetVersion
from apps.catalog.selectors import visible_datasets
from apps.monitoring.models import EndpointMonitoring


class MonitoringSettingsForm(forms.ModelForm):
    reference_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(),
        required=False,
        empty_label="The serving version's training data (from its run's inputs)",
        help_text="Compare served data with another profiled dataset version instead.",
    )

    class Meta:
        model = EndpointMonitoring
        fields = [
            "drift_warn_psi",
            "drift_alert_psi",
            "drift_window_hours",
            "store_payloads",
            "payload_retention_days",
            "reference_version",
        ]
        labels = {
            "drift_warn_psi": "Warn at PSI ≥",
            "drift_alert_psi": "Alert at PSI ≥",
            "drift_window_hours": "Drift window (hours)",
            "store_payloads": "Keep raw request payloads",
            "payload_retention_days": "Keep payloads for (days)",
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reference_version"].queryset = (
            DatasetVersion.objects.filter(dataset__in=visible_datasets(user).values("pk"), profile__isnull=False)
            .select_related("dataset")
            .order_by("dataset__name", "-number")
        )
        self.fields["reference_version"].label_from_instance = lambda v: f"{v.dataset.name} v{v.number}"
        for field in self.fields.values():
            css = "form-check-input" if isinstance(field.widget, forms.CheckboxInput) else "form-control"
            if isinstance(field.widget, forms.Select):
                css = "form-select"
            field.widget.attrs.setdefault("class", css)

    def clean(self):
        data = super().clean()
        warn, alert = data.get("drift_warn_psi"), data.get("drift_alert_psi")
        if warn is not None and alert is not None and alert < warn:
            self.add_error("drift_alert_psi", "The alert threshold must be at least the warning threshold.")
        return data

    def _post_clean(self):
        # The service validates and saves; the model's own constraint check needs the endpoint.
        pass
