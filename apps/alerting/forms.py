"""Forms of the alerting pages. They shape what the user typed; the rules (who may, what is a
valid threshold, a silence's end) are checked by services, whose messages come back inline."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from apps.accounts.models import Team
from apps.alerting.models import Alert, AlertRule, Severity, WebhookChannel
from apps.alerting.services import RULE_FIELDS


class AlertListForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Open"), ("all", "Any"), *Alert.State.choices])
    severity = forms.ChoiceField(required=False, choices=[("", "Any"), *Severity.choices])
    environment = forms.CharField(required=False, max_length=50)
    endpoint = forms.CharField(required=False, max_length=100)

    def values(self) -> dict[str, str]:
        data = self.cleaned_data if self.is_valid() else {}
        return {key: (data.get(key) or "").strip() for key in ("state", "severity", "environment", "endpoint")}


class CommentForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, required=False)


class RuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = list(RULE_FIELDS)  # the fields services accept; their rules are checked there
        help_texts = {
            "threshold": "Percent for error rate and traffic drop, milliseconds for latency, PSI for drift.",
            "window_minutes": "How far back each evaluation looks (the latest report for drift).",
            "metric_name": "Live metric rules: accuracy, rmse, mae…",
            "job_kind": "Failed-job rules: only this job kind (blank: any job about the endpoint).",
            "on_call_team": "Paged besides the endpoint's owner; blank: the environment's deployer team.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["on_call_team"].queryset = Team.objects.order_by("name")
        for optional in ("comparison", "name", "baseline"):
            self.fields[optional].required = False

    def _post_clean(self):
        # Model validation (scope, thresholds) happens in services, with the scope set.
        pass


class SilenceForm(forms.Form):
    endpoint = forms.CharField(required=False, max_length=100, help_text="An endpoint's name.")
    environment = forms.CharField(required=False, max_length=50, help_text="An environment's name.")
    rule = forms.IntegerField(required=False, min_value=1, help_text="A rule's number.")
    hours = forms.FloatField(min_value=0.05, max_value=24 * 90, initial=2, label="For (hours)")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)

    def ends_at(self):
        return timezone.now() + timedelta(hours=self.cleaned_data["hours"])


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=120)
    url = forms.URLField(max_length=500, assume_scheme="https")
    format = forms.ChoiceField(choices=WebhookChannel.Format.choices)
    secret = forms.CharField(max_length=200, required=False, help_text="Signs each body (X-Causeway-Signature).")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    endpoint = forms.CharField(required=False, max_length=100, help_text="An endpoint's name.")
    min_severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.INFO, label="From severity")
