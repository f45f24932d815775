from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "apps.deployments"
    label = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.deployments.selectors import can_view_endpoint_id, can_view_environment_id, can_view_request_id

        register_object_visibility("deployments.deploymentrequest", can_view_request_id)
        register_object_visibility("deployments.endpoint", can_view_endpoint_id)
        register_object_visibility("deployments.environment", can_view_environment_id)
        _register_sharing()


def _register_sharing() -> None:
    # The Share dialog (apps.accounts.sharing): invoke grants on endpoints (grant_invoke) and
    # approver / deployer teams on environments (update_environment_policy), both audited there.
    from django.urls import reverse

    from apps.accounts.sharing import AccessRow, Grant, Level, Shareable, owned_shareable, register
    from apps.deployments import permissions, selectors, services
    from apps.deployments.models import ApprovalRule, Endpoint, Environment

    def share_environment(*, obj, by, level, user, team, grant) -> None:
        from django.core.exceptions import ValidationError

        if team is None:
            raise ValidationError("Environments are shared with teams: approval rules and deployers name teams.")
        if level.key == "deploy":
            if grant or obj.deployer_team_id == team.pk:
                services.update_environment_policy(environment=obj, by=by, deployer_team=team if grant else None)
            return
        rules = [
            {"team": rule.team, "role": rule.role, "required_approvals": rule.required_approvals}
            for rule in ApprovalRule.objects.filter(environment=obj).select_related("team").order_by("id")
        ]
        held = any(rule["team"] is not None and rule["team"].pk == team.pk for rule in rules)
        if grant == held:
            return
        if grant:  # one approval from the team, on top of the rules already there
            rules.append({"team": team, "required_approvals": 1})
        else:
            rules = [rule for rule in rules if rule["team"] is None or rule["team"].pk != team.pk]
            if not rules:
                raise ValidationError("An environment needs at least one approval rule: add another one first.")
        services.update_environment_policy(environment=obj, by=by, rules=rules)

    def environment_grants(obj) -> list[Grant]:
        grants: dict[int, Grant] = {}
        for rule in obj.approval_rules.all():
            if rule.team_id and "approve" not in grants.setdefault(rule.team_id, Grant(rule.team, [])).levels:
                grants[rule.team_id].levels.append("approve")
        if obj.deployer_team_id:
            grants.setdefault(obj.deployer_team_id, Grant(obj.deployer_team, [])).levels.append("deploy")
        return list(grants.values())

    def environment_rows(obj) -> list[AccessRow]:
        rows = [
            AccessRow(reason="role", who=f"Role {rule.role}", access=[f"approve ({rule.required_approvals} needed)"])
            for rule in obj.approval_rules.all()
            if rule.role
        ]
        if not obj.deployer_team_id:
            rows.append(AccessRow(reason="role", who="The requester", access=["deploy (no deployer team named)"]))
        return rows

    register(
        Shareable(
            kind="environment",
            model=Environment,
            label="environment",
            levels=(
                Level("approve", "approve (adds a rule: 1 approval from the team)", teams_only=True),
                Level("deploy", "deploy (the environment's deployer team)", teams_only=True),
            ),
            lookup=lambda user, pk: selectors.environments().filter(pk=pk).first(),
            can_manage=lambda user, obj: permissions.can_edit_policy(user),
            share=share_environment,
            grants=environment_grants,
            extra_rows=environment_rows,
            visible=lambda user: selectors.environments() if user.is_authenticated else Environment.objects.none(),
            url=lambda obj: reverse("deployments:environment_list"),
            owner_fields=(),
            team_field=None,
            is_public=lambda obj: True,
        )
    )
    register(
        owned_shareable(
            kind="endpoint",
            model=Endpoint,
            levels=(Level("invoke", "invoke (call the endpoint)", "invoke_endpoint"),),
            related=("owner", "team__lead", "environment"),
            can_manage=permissions.can_manage_endpoint,
            share=lambda obj, by, level, user, team, grant: services.grant_invoke(
                endpoint=obj, by=by, user=user, team=team, grant=grant
            ),
            visible=selectors.visible_endpoints,
            url=lambda obj: reverse("deployments:endpoint", args=[obj.name]),
            is_public=lambda obj: False,
            other_reason="can see the served model, approves for its environment, or Operations role",
        )
    )
