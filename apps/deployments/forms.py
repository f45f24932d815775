"""Forms of the deployment pages. They only read and shape what the user typed; every rule
(four-eyes, step-up, slugs, canary shares, policy values) is checked by services, whose
messages are shown inline."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.accounts.models import Team
from apps.accounts.roles import ALL_ROLES
from apps.deployments.models import DeploymentRequest, Environment


class RequestListForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Any"), *DeploymentRequest.State.choices])
    environment = forms.CharField(required=False, max_length=50)
    model = forms.CharField(required=False, max_length=256)
    requester = forms.CharField(required=False, max_length=150)

    def values(self) -> dict[str, str]:
        """The cleaned filters; empty for whatever did not validate."""
        data = self.cleaned_data if self.is_valid() else {}
        return {key: (data.get(key) or "").strip() for key in ("state", "environment", "model", "requester")}


class NewRequestForm(forms.Form):
    model = forms.CharField(max_length=256, label="Model")
    version = forms.IntegerField(min_value=1, label="Version")
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(), empty_label=None, to_field_name="name")
    endpoint_name = forms.CharField(
        max_length=100, label="Endpoint name", help_text="Lower-case letters, digits and hyphens."
    )
    justification = forms.CharField(widget=forms.Textarea, max_length=20_000)
    risk_note = forms.CharField(widget=forms.Textarea, max_length=20_000, required=False, label="Risk note")
    rollout = forms.ChoiceField(choices=DeploymentRequest.Rollout.choices, initial=DeploymentRequest.Rollout.REPLACE)
    canary_percent = forms.IntegerField(
        min_value=0, max_value=100, required=False, initial=10, label="Canary share (%)"
    )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    # Required by the services too; checked here so an empty comment never reaches them.
    comment = forms.CharField(
        widget=forms.Textarea,
        max_length=20_000,
        error_messages={"required": "A comment is required to approve or reject."},
    )
    password = forms.CharField(widget=forms.PasswordInput, required=False, strip=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False)


class EnvironmentPolicyForm(forms.Form):
    """An environment's policy. Thresholds and the change window are JSON (as stored);
    approval rules one per line: `role: Approvers: 1` or `team: Model Risk: 2`."""

    description = forms.CharField(widget=forms.Textarea, required=False)
    display_order = forms.IntegerField(min_value=0, max_value=32767)
    allow_self_approval = forms.BooleanField(required=False)
    min_card_completeness = forms.IntegerField(min_value=0, max_value=100, label="Minimum card completeness (%)")
    metric_thresholds = forms.CharField(
        widget=forms.Textarea,
        required=False,
        help_text='JSON list, e.g. [{"metric": "roc_auc", "op": ">=", "value": 0.7}].',
    )
    forbid_unapproved_pii = forms.BooleanField(required=False, label="Forbid PII training data without access")
    require_evaluation_job = forms.BooleanField(required=False)
    change_window = forms.CharField(
        required=False,
        help_text='JSON, e.g. {"days": [0, 1, 2, 3], "start": "08:00", "end": "16:00"} (UTC); empty: any time.',
    )
    request_expiry_hours = forms.IntegerField(min_value=1, max_value=24 * 365)
    requires_step_up = forms.BooleanField(required=False, label="Approvers re-enter their password")
    allow_pickle = forms.BooleanField(required=False, label="Allow pickled models")
    deployer_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    rules = forms.CharField(
        widget=forms.Textarea,
        required=False,
        label="Approval rules",
        help_text="One per line: “role: Approvers: 1” or “team: Model Risk: 2”.",
    )

    @classmethod
    def initial_for(cls, environment: Environment) -> dict[str, Any]:
        return {
            "description": environment.description,
            "display_order": environment.display_order,
            "allow_self_approval": environment.allow_self_approval,
            "min_card_completeness": environment.min_card_completeness,
            "metric_thresholds": json.dumps(environment.metric_thresholds or []),
            "forbid_unapproved_pii": environment.forbid_unapproved_pii,
            "require_evaluation_job": environment.require_evaluation_job,
            "change_window": json.dumps(environment.change_window) if environment.change_window else "",
            "request_expiry_hours": environment.request_expiry_hours,
            "requires_step_up": environment.requires_step_up,
            "allow_pickle": environment.allow_pickle,
            "deployer_team": environment.deployer_team_id,
            "rules": "\n".join(
                f"team: {rule.team.name}: {rule.required_approvals}"
                if rule.team_id
                else f"role: {rule.role}: {rule.required_approvals}"
                for rule in environment.approval_rules.all()
            ),
        }

    def clean_metric_thresholds(self) -> Any:
        return _json_field(self.cleaned_data.get("metric_thresholds"), default=[])

    def clean_change_window(self) -> Any:
        return _json_field(self.cleaned_data.get("change_window"), default=None)

    def clean_rules(self) -> list[dict[str, Any]]:
        rules = []
        teams = {team.name.lower(): team for team in Team.objects.all()}
        for number, line in enumerate((self.cleaned_data.get("rules") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split(":")]
            if len(parts) == 2:
                parts.append("1")
            if len(parts) != 3 or parts[0].lower() not in ("role", "team") or not parts[2].isdigit():
                raise forms.ValidationError(f"Line {number}: write “role: <role>: <n>” or “team: <team>: <n>”.")
            kind, who, count = parts[0].lower(), parts[1], int(parts[2])
            if count < 1:
                raise forms.ValidationError(f"Line {number}: at least one approval.")
            if kind == "role":
                if who not in ALL_ROLES:
                    raise forms.ValidationError(f"Line {number}: unknown role {who!r} ({', '.join(ALL_ROLES)}).")
                rules.append({"role": who, "required_approvals": count})
            else:
                team = teams.get(who.lower())
                if team is None:
                    raise forms.ValidationError(f"Line {number}: unknown team {who!r}.")
                rules.append({"team": team, "required_approvals": count})
        return rules

    def policy_changes(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("rules", None)
        return data


def _json_field(text: str | None, *, default: Any) -> Any:
    text = (text or "").strip()
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
