"""One Share dialog for every governed object (dataset, experiment, registered model,
environment, endpoint, use case).

accounts is the leftmost app, so it cannot import the apps whose objects are shared. Each of
them registers a `Shareable` from its AppConfig.ready(): the levels it offers, how to find an
object the user may see, who may manage its shares, and the app's own share service (which
checks permission, writes guardian rows and audits). This module only reads guardian's
direct-FK tables (to say who has access) and calls those services; it never writes a
permission row itself, so every change stays audited by the app that owns the object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import QuerySet

from apps.accounts.models import Team, User


@dataclass(frozen=True)
class Level:
    """One thing a grantee may be given on an object (view, change, approve, invoke...)."""

    key: str
    label: str
    # The guardian codename whose presence shows the level is held (blank: custom reader).
    codename: str = ""
    # Other levels granted with this one (change brings view: a change share one cannot see
    # would do nothing).
    includes: tuple[str, ...] = ()
    teams_only: bool = False


@dataclass
class Grant:
    """An explicit share of one object with one user or team, as the dialog lists it."""

    grantee: User | Team
    levels: list[str]

    @property
    def is_team(self) -> bool:
        return isinstance(self.grantee, Team)

    @property
    def key(self) -> str:
        return f"{'team' if self.is_team else 'user'}:{self.grantee.pk}"


@dataclass
class AccessRow:
    """A line of the "who has access" panel: why someone (or some group) can reach the object."""

    reason: str  # owner, steward, team, lead, organisation, user, team_share, role, admins
    who: Any  # a User, a Team or a description
    access: list[str]
    grant: Grant | None = None  # explicit shares can be removed from the dialog


@dataclass
class Shareable:
    kind: str  # the URL slug: /accounts/share/<kind>/<pk>/
    model: type[models.Model]
    label: str
    levels: tuple[Level, ...]
    # The object with this pk if `user` may see it, else None.
    lookup: Callable[[User, int], models.Model | None]
    can_manage: Callable[[User, models.Model], bool]
    # The app's audited share service: share(obj=, by=, level=<Level>, user=, team=, grant=).
    share: Callable[..., None]
    # Everything `user` may see (the app's own permission-filtered selector).
    visible: Callable[[User], QuerySet]
    url: Callable[[models.Model], str]
    # Takes back every share of one grantee; by default each held level is revoked in turn.
    revoke: Callable[..., None] | None = None
    # Reads explicit shares of one object; by default guardian's direct-FK tables.
    grants: Callable[[models.Model], list[Grant]] | None = None
    owner_fields: tuple[str, ...] = ("owner",)
    team_field: str | None = "team"
    # Whether everyone signed in sees the object regardless of shares.
    is_public: Callable[[models.Model], bool] = field(
        default=lambda obj: getattr(obj, "visibility", "") == "organisation"
    )
    # Why else someone may see objects of this kind (access report fallback).
    other_reason: str = "another rule of this kind of object"
    # Extra rows for the "who has access" panel (roles, approvers...).
    extra_rows: Callable[[models.Model], list[AccessRow]] | None = None
    # Extra access-report reasons, given the user and the objects: {pk: [reason, ...]}.
    extra_reasons: Callable[[User, Sequence[models.Model]], dict[int, list[str]]] | None = None

    def level(self, key: str) -> Level:
        for level in self.levels:
            if level.key == key:
                return level
        raise ValidationError({"level": f"Choose one of: {', '.join(level.key for level in self.levels)}."})

    @property
    def level_by_codename(self) -> dict[str, Level]:
        return {level.codename: level for level in self.levels if level.codename}


def owned_shareable(
    *,
    kind: str,
    model: type[models.Model],
    levels: tuple[Level, ...],
    visible: Callable[[User], QuerySet],
    label: str = "",
    related: tuple[str, ...] = ("owner", "team__lead"),
    **options: Any,
) -> Shareable:
    """The common registration of an owned object: found through the app's own visibility
    selector (`visible`), with the people the dialog names fetched in the same query. Each app
    passes only what differs (`can_manage`, `share`, `url`, and any other Shareable field)."""
    return Shareable(
        kind=kind,
        model=model,
        label=label or kind,
        levels=levels,
        lookup=lambda user, pk: visible(user).select_related(*related).filter(pk=pk).first(),
        visible=visible,
        **options,
    )


REGISTRY: dict[str, Shareable] = {}


def register(shareable: Shareable) -> None:
    """Called from each governed app's AppConfig.ready()."""
    REGISTRY[shareable.kind] = shareable


def shareable_for_kind(kind: str) -> Shareable | None:
    return REGISTRY.get(kind)


def shareable_for_object(obj: models.Model) -> Shareable | None:
    for shareable in REGISTRY.values():
        if isinstance(obj, shareable.model):
            return shareable
    return None


def managed_object(user: User, kind: str, pk: Any) -> tuple[Shareable, models.Model] | None:
    """The object and its registration if `user` may manage its shares; None otherwise, so the
    caller answers 404 whether the object is missing, hidden, or only not manageable."""
    shareable = REGISTRY.get(kind)
    if shareable is None or not user.is_authenticated or not str(pk).isdigit():
        return None
    obj = shareable.lookup(user, int(pk))
    if obj is None or not shareable.can_manage(user, obj):
        return None
    return shareable, obj


# --- Reading who has access ---------------------------------------------------------------------


def guardian_tables(model: type[models.Model]) -> tuple[type[models.Model], type[models.Model]]:
    """The direct-FK user and group permission models of `model` (DESIGN: no generic tables)."""
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    return get_user_obj_perms_model(model), get_group_obj_perms_model(model)


def read_grants(shareable: Shareable, obj: models.Model) -> list[Grant]:
    """Explicit shares of `obj`: users then teams, each with the levels held (two queries)."""
    if shareable.grants is not None:
        return shareable.grants(obj)
    by_codename = shareable.level_by_codename
    user_model, group_model = guardian_tables(shareable.model)
    grants: dict[tuple[str, int], Grant] = {}
    for row in user_model.objects.filter(content_object_id=obj.pk).select_related("user", "permission"):
        level = by_codename.get(row.permission.codename)
        if level is not None:
            grants.setdefault(("user", row.user_id), Grant(row.user, [])).levels.append(level.key)
    for row in group_model.objects.filter(content_object_id=obj.pk).select_related("group__team", "permission"):
        team = getattr(row.group, "team", None)
        level = by_codename.get(row.permission.codename)
        if team is not None and level is not None:
            grants.setdefault(("team", team.pk), Grant(team, [])).levels.append(level.key)
    order = {level.key: index for index, level in enumerate(shareable.levels)}
    for grant in grants.values():
        grant.levels.sort(key=order.__getitem__)
    return sorted(grants.values(), key=lambda grant: (grant.is_team, str(grant.grantee).lower()))


def who_has_access(shareable: Shareable, obj: models.Model) -> list[AccessRow]:
    """The "who has access" panel: owner(s), team and its lead, the organisation when the
    object is visible to it, explicit user and team shares, role rules, and the platform
    admins. A constant number of queries whatever the number of shares."""
    from apps.accounts.selectors import platform_admins

    rows: list[AccessRow] = []
    for name in shareable.owner_fields:
        person = getattr(obj, name, None)
        if person is not None:
            rows.append(AccessRow(reason=name, who=person, access=["everything", "manages shares"]))
    team = getattr(obj, shareable.team_field, None) if shareable.team_field else None
    if team is not None:
        rows.append(AccessRow(reason="team", who=team, access=["view", "change as their roles allow"]))
        if team.lead_id and team.lead is not None:
            rows.append(AccessRow(reason="lead", who=team.lead, access=["manages shares (team lead)"]))
    if shareable.is_public(obj):
        rows.append(AccessRow(reason="organisation", who="Everyone in the organisation", access=["view"]))
    if shareable.extra_rows is not None:
        rows.extend(shareable.extra_rows(obj))
    labels = {level.key: level.label for level in shareable.levels}
    for grant in read_grants(shareable, obj):
        rows.append(
            AccessRow(
                reason="team_share" if grant.is_team else "user",
                who=grant.grantee,
                access=[labels[key] for key in grant.levels],
                grant=grant,
            )
        )
    rows.append(
        AccessRow(
            reason="admins",
            who=f"Platform admins ({platform_admins().count()})",
            access=["everything (admins see and manage every object)"],
        )
    )
    return rows


# --- Changing shares (always through the app's service) ---------------------------------------


def _translate(exc: Exception) -> Exception:
    """The apps' services raise their own errors (tracking's carry MLflow's HTTP status); the
    dialog needs two kinds: a refusal (404, never revealing more) or bad input (400)."""
    status = getattr(exc, "http_status", None)
    if isinstance(exc, PermissionDenied) or status in (403, 404):
        return PermissionDenied(str(getattr(exc, "message", exc)))
    if isinstance(exc, ValidationError):
        return exc
    if status is not None and 400 <= status < 500:
        return ValidationError(str(getattr(exc, "message", exc)))
    return exc


def _call(shareable: Shareable, **kwargs: Any) -> None:
    try:
        shareable.share(**kwargs)
    except Exception as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


def grant(
    *, shareable: Shareable, obj: models.Model, by: User, level: str, user: User | None = None, team: Team | None = None
) -> None:
    """Give one user or team `level` (and the levels it includes) on `obj`."""
    chosen = shareable.level(level)
    if chosen.teams_only and team is None:
        raise ValidationError({"level": f"“{chosen.label}” is given to teams only."})
    with transaction.atomic():  # a level and those it includes, or nothing
        for key in (*chosen.includes, chosen.key):
            _call(shareable, obj=obj, by=by, level=shareable.level(key), user=user, team=team, grant=True)


def revoke(
    *,
    shareable: Shareable,
    obj: models.Model,
    by: User,
    user: User | None = None,
    team: Team | None = None,
    level: str | None = None,
) -> None:
    """Take back `level`, or every explicit share, of one user or team on `obj`."""
    if level is not None:
        _call(shareable, obj=obj, by=by, level=shareable.level(level), user=user, team=team, grant=False)
        return
    if shareable.revoke is not None:
        try:
            shareable.revoke(obj=obj, by=by, user=user, team=team)
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        return
    with transaction.atomic():  # every level of the grantee, or none
        _revoke_all(shareable, obj, by=by, user=user, team=team)


def _revoke_all(shareable: Shareable, obj: models.Model, *, by: User, user: User | None, team: Team | None) -> None:
    held = next(
        (
            g.levels
            for g in read_grants(shareable, obj)
            if (team is not None and g.is_team and g.grantee.pk == team.pk)
            or (user is not None and not g.is_team and g.grantee.pk == user.pk)
        ),
        [],
    )
    # Highest level first, so a service that takes dependants with a lower level finds them gone.
    for key in reversed(held):
        _call(shareable, obj=obj, by=by, level=shareable.level(key), user=user, team=team, grant=False)


def apply_many(
    *,
    by: User,
    targets: Iterable[tuple[Shareable, models.Model]],
    users: Sequence[User],
    teams: Sequence[Team],
    level: str | None,
    grant_access: bool,
) -> int:
    """Grant (or revoke) on several objects for several grantees in one transaction: all
    succeed or nothing changes. Each change goes through the app's service and is audited.
    Returns the number of (object, grantee) changes made."""
    if not users and not teams:
        raise ValidationError("Choose at least one user or team.")
    count = 0
    with transaction.atomic():
        for shareable, obj in targets:
            if not shareable.can_manage(by, obj):
                raise PermissionDenied(f"You may not manage the shares of {obj}.")
            for person in users:
                if grant_access:
                    grant(shareable=shareable, obj=obj, by=by, level=level or "", user=person)
                else:
                    revoke(shareable=shareable, obj=obj, by=by, user=person, level=level)
                count += 1
            for group in teams:
                if grant_access:
                    grant(shareable=shareable, obj=obj, by=by, level=level or "", team=group)
                else:
                    revoke(shareable=shareable, obj=obj, by=by, team=group, level=level)
                count += 1
    return count


# --- What one user can reach, and why -------------------------------------------------------------


@dataclass
class ReachedObject:
    obj: models.Model
    url: str
    reasons: list[str]


@dataclass
class ReachSection:
    shareable: Shareable
    total: int
    objects: list[ReachedObject]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.objects)


def access_report(person: User, *, limit: int = 100) -> list[ReachSection]:
    """For each kind of governed object: how many `person` can see, and the first `limit` of
    them with why (admin, owner, team, shared directly, via team <name>, public, or the kind's
    other rules). Uses each app's own visibility selector, so the report cannot disagree with
    what the person would actually see. A constant number of queries per kind."""
    from apps.accounts.selectors import cached_team_ids, is_platform_admin

    admin = is_platform_admin(person)
    team_ids = set(cached_team_ids(person))
    sections = []
    for shareable in REGISTRY.values():
        queryset = shareable.visible(person)
        total = queryset.count()
        objects = list(queryset.order_by("pk")[:limit])
        pks = [obj.pk for obj in objects]
        direct: dict[int, set[str]] = {}
        via_team: dict[int, set[str]] = {}
        by_codename = shareable.level_by_codename
        if by_codename and pks and shareable.grants is None:
            user_model, group_model = guardian_tables(shareable.model)
            for object_id, codename in user_model.objects.filter(
                user=person, content_object_id__in=pks, permission__codename__in=list(by_codename)
            ).values_list("content_object_id", "permission__codename"):
                direct.setdefault(object_id, set()).add(by_codename[codename].label)
            for object_id, team_name, codename in group_model.objects.filter(
                group__user=person, content_object_id__in=pks, permission__codename__in=list(by_codename)
            ).values_list("content_object_id", "group__team__name", "permission__codename"):
                via_team.setdefault(object_id, set()).add(f"{team_name or 'a group'}: {by_codename[codename].label}")
        elif shareable.grants is not None:
            # Kinds with their own reader (environments): few objects, rules prefetched.
            for obj in objects:
                for granted in shareable.grants(obj):
                    if granted.is_team and granted.grantee.pk in team_ids:
                        via_team.setdefault(obj.pk, set()).update(
                            f"{granted.grantee.name}: {shareable.level(key).label}" for key in granted.levels
                        )
                    elif not granted.is_team and granted.grantee.pk == person.pk:
                        direct.setdefault(obj.pk, set()).update(shareable.level(key).label for key in granted.levels)
        extra = shareable.extra_reasons(person, objects) if shareable.extra_reasons and objects else {}
        reached = []
        for obj in objects:
            reasons = []
            if admin:
                reasons.append("admin")
            reasons += [name for name in shareable.owner_fields if getattr(obj, f"{name}_id", None) == person.pk]
            if shareable.team_field and getattr(obj, f"{shareable.team_field}_id", None) in team_ids:
                reasons.append("team")
            reasons += [f"shared directly ({label})" for label in sorted(direct.get(obj.pk, ()))]
            reasons += [f"via team {label}" for label in sorted(via_team.get(obj.pk, ()))]
            if shareable.is_public(obj):
                reasons.append("public")
            reasons += extra.get(obj.pk, [])
            reached.append(ReachedObject(obj=obj, url=shareable.url(obj), reasons=reasons or [shareable.other_reason]))
        sections.append(ReachSection(shareable=shareable, total=total, objects=reached))
    return sections
