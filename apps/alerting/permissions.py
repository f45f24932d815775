"""Who may do what with alerts. Pure functions over the user and the rows; the queryset forms
are in selectors.py and must agree.

- see an alert, an endpoint's rules and silences: whoever may see the endpoint (deployments).
- acknowledge / resolve an alert: the endpoint's owner, its team's lead, members of the rule's
  on-call team (the environment's deployer team by default), Operations and admins.
- create or edit an endpoint's rules, silence it, give it a webhook: its owner, its team's
  lead, Operations and admins.
- environment-wide defaults (rules, silences): Operations and admins.
- a team's webhook channels: the team's lead, Operations and admins.
"""

from __future__ import annotations

from apps.deployments import permissions as deployments
from apps.deployments.permissions import is_admin, is_ops, team_ids


def _is_operator(user) -> bool:
    return bool(user.is_authenticated and (is_admin(user) or is_ops(user)))


def on_call_team_id(rule, endpoint) -> int | None:
    """The team paged for `rule` on `endpoint`, besides its owner."""
    return rule.on_call_team_id or endpoint.environment.deployer_team_id


def can_manage_endpoint_alerting(user, endpoint) -> bool:
    if not user.is_authenticated:
        return False
    if _is_operator(user) or endpoint.owner_id == user.pk:
        return True
    return endpoint.team_id is not None and endpoint.team.lead_id == user.pk


def can_manage_environment_alerting(user) -> bool:
    return _is_operator(user)


def can_respond(user, alert) -> bool:
    """Acknowledge or resolve `alert`."""
    if not user.is_authenticated:
        return False
    endpoint = alert.endpoint
    if endpoint is None:
        return _is_operator(user)
    if can_manage_endpoint_alerting(user, endpoint):
        return True
    team_id = on_call_team_id(alert.rule, endpoint)
    return team_id is not None and team_id in team_ids(user)


def can_edit_rule(user, rule) -> bool:
    if rule.endpoint_id:
        return can_manage_endpoint_alerting(user, rule.endpoint)
    return can_manage_environment_alerting(user)


def can_view_endpoint(user, endpoint) -> bool:
    return deployments.can_view_endpoint(user, endpoint)


def can_end_silence(user, silence) -> bool:
    if not user.is_authenticated:
        return False
    if _is_operator(user) or silence.created_by_id == user.pk:
        return True
    return silence.endpoint_id is not None and can_manage_endpoint_alerting(user, silence.endpoint)


def can_manage_team_webhooks(user, team) -> bool:
    return bool(user.is_authenticated and (_is_operator(user) or team.lead_id == user.pk))
