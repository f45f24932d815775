"""Reads about people, roles, teams and tokens."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Count, Q, QuerySet

from apps.accounts.models import PersonalAccessToken, Team, User
from apps.accounts.roles import ADMIN, ALL_ROLES, ROLE_SLUGS
from apps.core.rows import RowLoader, fetch_one


def roles_of(user: User) -> list[str]:
    """The user's role names, cached on the user object for the request."""
    if not user.is_authenticated:
        return []
    cached = getattr(user, "_causeway_roles", None)
    if cached is None:
        cached = user._causeway_roles = _role_names(user.pk)
    return cached


def _role_names(user_id: int) -> list[str]:
    # Hand-written: asked on every MLflow API write, where compiling the ORM query cost more
    # than running it (apps/core/rows.py).
    quote = connection.ops.quote_name
    memberships = quote(User.groups.through._meta.db_table)
    groups = quote(Group._meta.db_table)
    names = ", ".join(["%s"] * len(ALL_ROLES))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT g.{quote('name')} FROM {groups} g "  # noqa: S608
            f"INNER JOIN {memberships} m ON m.{quote('group_id')} = g.{quote('id')} "
            f"WHERE m.{quote('user_id')} = %s AND g.{quote('name')} IN ({names})",
            [user_id, *ALL_ROLES],
        )
        return sorted(row[0] for row in cursor.fetchall())


def role_slugs_of(user: User) -> set[str]:
    slugs = {ROLE_SLUGS[role] for role in roles_of(user)}
    if user.is_authenticated and user.is_superuser:
        slugs.add("admin")
    return slugs


def is_platform_admin(user: User) -> bool:
    """Superusers and members of the Platform admins role (roles cached per request)."""
    return bool(user.is_authenticated and (user.is_superuser or has_role(user, ADMIN)))


def platform_admins() -> QuerySet[User]:
    """Active superusers and members of the Platform admins role (those is_platform_admin says yes to)."""
    return User.objects.filter(is_active=True).filter(Q(is_superuser=True) | Q(groups__name=ADMIN)).distinct()


def has_role(user: User, role: str) -> bool:
    return role in roles_of(user) or (role == ADMIN and user.is_superuser)


_TOKEN_ROW = RowLoader(PersonalAccessToken, "t", ["id", "user_id", "expires_at", "last_used_at", "revoked_at"])
_USER_ROW = RowLoader(User, "u")


def token_by_hash(token_hash: str) -> PersonalAccessToken | None:
    """The token with this hash and its user loaded (`select_related("user")`), in one
    hand-written query: every MLflow API call makes it (apps/core/rows.py)."""
    quote = connection.ops.quote_name
    found = fetch_one(
        connection,
        f"FROM {quote(PersonalAccessToken._meta.db_table)} t INNER JOIN {quote(User._meta.db_table)} u "
        f"ON u.{quote('id')} = t.{quote('user_id')} WHERE t.{quote('token_hash')} = %s",
        [token_hash],
        [_TOKEN_ROW, _USER_ROW],
    )
    if found is None:
        return None
    token, user = found
    token.user = user
    return token


def tokens_of(user: User) -> QuerySet[PersonalAccessToken]:
    return PersonalAccessToken.objects.filter(user=user).order_by("-created_at")


def teams_of(user: User) -> QuerySet[Team]:
    return Team.objects.filter(group__user=user).select_related("lead")


def team_ids_of(user: User) -> list[int]:
    if not user.is_authenticated:
        return []
    # Hand-written: every permission check on a team-owned object asks it, once per request
    # (apps/core/rows.py on why compiling the ORM query costs more than running it).
    quote = connection.ops.quote_name
    memberships = quote(User.groups.through._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.{quote('id')} FROM {quote(Team._meta.db_table)} t "  # noqa: S608
            f"INNER JOIN {memberships} m ON m.{quote('group_id')} = t.{quote('group_id')} "
            f"WHERE m.{quote('user_id')} = %s ORDER BY t.{quote('id')}",
            [user.pk],
        )
        return [row[0] for row in cursor.fetchall()]


def cached_team_ids(user: User) -> list[int]:
    """team_ids_of, cached on the user object for the request: permission checks ask it once
    per object (a search page, an MLflow call), and the answer does not change meanwhile."""
    cached = getattr(user, "_causeway_team_ids", None)
    if cached is None:
        cached = team_ids_of(user)
        user._causeway_team_ids = cached
    return cached


def teams_with_counts() -> QuerySet[Team]:
    # Teams' names and members are organisation metadata, visible to every signed-in user.
    return Team.objects.select_related("lead").annotate(member_count=Count("group__user"))


def team_members(team: Team) -> QuerySet[User]:
    return User.objects.filter(groups=team.group_id).order_by("username")


def can_manage_team(user: User, team: Team) -> bool:
    """Add and remove members: platform admins and the team's lead. Naming the lead and
    creating teams: platform admins only."""
    return bool(user.is_authenticated and (is_platform_admin(user) or team.lead_id == user.pk))


def users_for_admin(*, text: str = "", role: str = "", status: str = "") -> QuerySet[User]:
    """The admin users list: search over username, names and e-mail, filter by role slug
    (roles.ROLE_SLUGS values, or "none") and status (active / inactive). Roles and teams are
    prefetched (two queries for the whole page)."""
    from django.contrib.auth.models import Group
    from django.db.models import Prefetch, Q

    users = User.objects.all()
    text = (text or "").strip()
    if text:
        users = users.filter(
            Q(username__icontains=text)
            | Q(display_name__icontains=text)
            | Q(first_name__icontains=text)
            | Q(last_name__icontains=text)
            | Q(email__icontains=text)
        )
    by_slug = {slug: name for name, slug in ROLE_SLUGS.items()}
    if role == "none":
        users = users.exclude(groups__name__in=ALL_ROLES)
    elif role in by_slug:
        users = users.filter(groups__name=by_slug[role])
    if status == "active":
        users = users.filter(is_active=True)
    elif status == "inactive":
        users = users.filter(is_active=False)
    return users.order_by("username").prefetch_related(
        Prefetch("groups", queryset=Group.objects.filter(name__in=ALL_ROLES).order_by("name"), to_attr="role_groups"),
        Prefetch(
            "groups", queryset=Group.objects.filter(team__isnull=False).select_related("team"), to_attr="team_groups"
        ),
    )
