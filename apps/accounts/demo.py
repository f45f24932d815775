"""Demo organisation: one user per role, two teams. Idempotent."""

from __future__ import annotations

from apps.accounts import services
from apps.accounts.models import Team, User
from apps.accounts.roles import ADMIN, APPROVER, BUSINESS_OWNER, ENGINEER, OPERATIONS, SCIENTIST

DEMO_PASSWORD = "causeway-demo"  # dev only; printed by `make run`, written in README

DEMO_USERS = [
    # username, display name, roles, teams
    ("scientist", "Sam Scientist", [SCIENTIST], ["Risk Analytics"]),
    ("engineer", "Emma Engineer", [ENGINEER], ["Risk Analytics"]),
    ("approver", "Alex Approver", [APPROVER], ["Model Risk"]),
    ("approver2", "Avery Approver", [APPROVER], ["Model Risk"]),
    ("ops", "Olivia Ops", [OPERATIONS], ["Platform Ops"]),
    ("owner", "Omar Owner", [BUSINESS_OWNER], ["Risk Analytics"]),
    ("admin", "Ada Admin", [ADMIN], ["Platform Ops"]),
]

DEMO_TEAMS = [
    ("Risk Analytics", "Credit-risk and fraud models.", "engineer"),
    ("Model Risk", "Independent model validation and approval.", "approver"),
    ("Platform Ops", "Runs the platform and the live endpoints.", "ops"),
]


def load(context: dict) -> None:
    users = {}
    for username, display_name, _, _ in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"display_name": display_name, "email": f"{username}@causeway.local"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            if username == "admin":
                user.is_staff = user.is_superuser = True
            user.save()
        users[username] = user
    admin = users["admin"]
    for username, _, roles, _ in DEMO_USERS:
        services.set_roles(user=users[username], roles=roles, by=admin)
    for name, description, lead in DEMO_TEAMS:
        team = Team.objects.filter(name=name).first() or services.create_team(
            name=name, description=description, lead=users[lead], by=admin
        )
        for username, _, _, teams in DEMO_USERS:
            if name in teams:
                services.add_team_member(team=team, user=users[username], by=admin)
    context["users"] = users
    context["admin"] = admin
