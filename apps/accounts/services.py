"""Every write to accounts: tokens, teams, roles, notifications. Each runs in a transaction and
is audited (notifications are not: they are a copy of an audited event, addressed to people)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import Notification, PersonalAccessToken, Team, User
from apps.accounts.roles import ADMIN, ALL_ROLES
from apps.accounts.selectors import can_manage_team, is_platform_admin, token_by_hash
from apps.audit import services as audit

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "cw_"
# A token is used on every API call; its last-used time is written at most this often.
LAST_USED_WRITE_INTERVAL = timedelta(minutes=1)


def hash_token(raw_token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no need for a slow KDF).
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def create_token(
    *, user: User, name: str, expires_in_days: int | None = None, created_by: User | None = None
) -> tuple[PersonalAccessToken, str]:
    """Create a token for `user`; returns the row and the raw secret, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the script that uses it."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if expires_in_days is None:
        expires_in_days = settings.TOKEN_DEFAULT_EXPIRY_DAYS
    if not 1 <= expires_in_days <= settings.TOKEN_MAX_EXPIRY_DAYS:
        raise ValidationError({"expires_in_days": f"Between 1 and {settings.TOKEN_MAX_EXPIRY_DAYS} days."})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = PersonalAccessToken.objects.create(
            user=user,
            name=name,
            prefix=raw[:10],
            token_hash=hash_token(raw),
            expires_at=timezone.now() + timedelta(days=expires_in_days),
        )
        audit.record(
            actor=created_by or user,
            action="token.create",
            target=token,
            after={"name": token.name, "user": user.username, "expires_at": token.expires_at},
        )
    return token, raw


def revoke_token(*, token: PersonalAccessToken, by: User) -> PersonalAccessToken:
    """Revoke a token. Its owner and platform admins may; revoking twice is a no-op."""
    if token.user_id != by.pk and not is_platform_admin(by):
        raise PermissionDenied("Only the token's owner or a platform admin may revoke it.")
    with transaction.atomic():
        token = PersonalAccessToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit.record(
                actor=by,
                action="token.revoke",
                target=token,
                before={"revoked_at": None},
                after={"revoked_at": token.revoked_at},
            )
    return token


def authenticate_token(raw_token: str, username: str | None = None) -> User | None:
    """The active user a raw token belongs to, or None (unknown, revoked, expired, wrong user,
    inactive user). Records when the token was last used."""
    if not raw_token or not raw_token.startswith(TOKEN_PREFIX) or len(raw_token) > 200:
        return None
    token = token_by_hash(hash_token(raw_token))
    if token is None or not token.is_active or not token.user.is_active:
        return None
    if username is not None and token.user.get_username() != username:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_WRITE_INTERVAL:
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def create_team(*, name: str, by: User, description: str = "", lead: User | None = None) -> Team:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A team needs a name."})
    slug = slugify(name)
    if not slug:
        raise ValidationError({"name": "Use letters or digits in the name."})
    if Team.objects.filter(slug=slug).exists() or Group.objects.filter(name=f"team:{slug}").exists():
        raise ValidationError({"name": f"A team called {name!r} already exists."})
    with transaction.atomic():
        group = Group.objects.create(name=f"team:{slug}")
        team = Team.objects.create(name=name, slug=slug, description=description, group=group, lead=lead)
        if lead is not None:
            group.user_set.add(lead)
        audit.record(actor=by, action="team.create", target=team, after=audit.snapshot(team))
    return team


def _require_team_manager(team: Team, by: User) -> None:
    # Checked here as well as in the view: services are the rule, views only its first gate.
    if not can_manage_team(by, team):
        raise PermissionDenied(f"Only platform admins and the team's lead may change who is in {team.name}.")


def add_team_member(*, team: Team, user: User, by: User) -> None:
    _require_team_manager(team, by)
    with transaction.atomic():
        if team.group.user_set.filter(pk=user.pk).exists():
            return
        team.group.user_set.add(user)
        user.__dict__.pop("_causeway_team_ids", None)  # selectors.cached_team_ids
        audit.record(actor=by, action="team.add_member", target=team, after={"member": user.username})


def remove_team_member(*, team: Team, user: User, by: User) -> None:
    _require_team_manager(team, by)
    with transaction.atomic():
        if not team.group.user_set.filter(pk=user.pk).exists():
            return
        team.group.user_set.remove(user)
        user.__dict__.pop("_causeway_team_ids", None)  # selectors.cached_team_ids
        changed = {}
        if team.lead_id == user.pk:
            team.lead = None
            team.save(update_fields=["lead"])
            changed["lead"] = None
        audit.record(
            actor=by, action="team.remove_member", target=team, before={"member": user.username}, after=changed
        )


def set_team_lead(*, team: Team, lead: User | None, by: User) -> Team:
    if not is_platform_admin(by):
        raise PermissionDenied("Only platform admins name a team's lead.")
    with transaction.atomic():
        before = {"lead": team.lead.username if team.lead else None}
        team.lead = lead
        team.save(update_fields=["lead"])
        if lead is not None:
            team.group.user_set.add(lead)
        audit.record(
            actor=by,
            action="team.set_lead",
            target=team,
            before=before,
            after={"lead": lead.username if lead else None},
        )
    return team


def set_roles(*, user: User, roles: list[str], by: User) -> None:
    """Give `user` exactly these roles (names from `roles.ALL_ROLES`)."""
    unknown = set(roles) - set(ALL_ROLES)
    if unknown:
        raise ValidationError({"roles": f"Unknown role(s): {', '.join(sorted(unknown))}"})
    with transaction.atomic():
        current = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        wanted = set(roles)
        # Platform admins use the Django admin (object permissions of every governed model);
        # the admin site lets in staff only, so staff follows the role (superusers keep it).
        staff = ADMIN in wanted or user.is_superuser
        if current == wanted and staff == user.is_staff:
            return
        user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        user.groups.add(*Group.objects.filter(name__in=wanted - current))
        before = {"roles": sorted(current), "is_staff": user.is_staff}
        if staff != user.is_staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        user.__dict__.pop("_causeway_roles", None)  # selectors.roles_of
        audit.record(
            actor=by,
            action="user.set_roles",
            target=user,
            before=before,
            after={"roles": sorted(wanted), "is_staff": user.is_staff},
        )


def _require_admin(by: User) -> None:
    if not is_platform_admin(by):
        raise PermissionDenied("Only platform admins manage users.")


def invite_user(
    *,
    username: str,
    email: str,
    by: User,
    set_password_url: Callable[[str, str], str],
    display_name: str = "",
    roles: Iterable[str] = (),
    teams: Iterable[Team] = (),
) -> User:
    """Create an account without a password and e-mail its owner a link to choose one (Django's
    password-reset token: single use, expires after PASSWORD_RESET_TIMEOUT, void once the
    password is set). `set_password_url(uidb64, token)` builds the absolute link. Platform admins."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import send_mail
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    _require_admin(by)
    username = (username or "").strip()
    email = (email or "").strip()
    if not username:
        raise ValidationError({"username": "Choose a username."})
    if not email:
        raise ValidationError({"email": "The invitation is sent by e-mail: give an address."})
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": f"The username {username!r} is taken."})
    with transaction.atomic():
        user = User(username=username, email=email, display_name=(display_name or "").strip())
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        audit.record(
            actor=by,
            action="user.invite",
            target=user,
            after={"username": user.username, "email": user.email, "display_name": user.display_name},
        )
        set_roles(user=user, roles=list(roles), by=by)
        for team in teams:
            add_team_member(team=team, user=user, by=by)
        link = set_password_url(urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user))
        subject = "You are invited to Causeway"
        body = (
            f"Hello {user},\n\n{by} created a Causeway account for you (username: {user.username}).\n"
            f"Choose your password here (the link works once):\n\n{link}\n"
        )
        transaction.on_commit(
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
        )
    return user


def set_active(*, user: User, active: bool, by: User) -> User:
    """Deactivate (or reactivate) an account. A deactivated user cannot sign in, their open
    sessions end at their next request (the auth backend refuses inactive users) and their
    tokens are refused while inactive; nothing they own is deleted. Platform admins, never on
    themselves (an admin cannot lock the last door behind them)."""
    _require_admin(by)
    if user.pk == by.pk and not active:
        raise ValidationError("You cannot deactivate your own account.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active == active:
            return user
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit.record(
            actor=by,
            action="user.reactivate" if active else "user.deactivate",
            target=user,
            before={"is_active": not active},
            after={"is_active": active},
        )
    return user


def notify(
    users: Iterable[User], title: str, body: str = "", url: str = "", email: bool = True, verb: str = ""
) -> list[Notification]:
    """Tell each of `users` (once each, inactive accounts skipped) something happened: an in-app
    notification row now, and an e-mail once the surrounding transaction commits, so a rolled
    back change never mails anyone."""
    recipients = {user.pk: user for user in users if user is not None and user.is_active}
    if not recipients:
        return []
    with transaction.atomic():
        rows = Notification.objects.bulk_create(
            [
                Notification(recipient=user, verb=verb[:100], title=title[:200], body=body, url=url[:500])
                for user in recipients.values()
            ]
        )
        if email:
            text = f"{body}\n\n{url}".strip() if url else body
            messages = [
                (title[:200], text, settings.DEFAULT_FROM_EMAIL, [user.email])
                for user in recipients.values()
                if user.email
            ]
            if messages:
                transaction.on_commit(lambda: _send_notification_mail(messages))
    return rows


def mark_notifications_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's unread notifications read (all of them, or those in `ids`)."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())


def _send_notification_mail(messages: list[tuple[str, str, str, list[str]]]) -> None:
    # The in-app notification is already stored: a mail server being down must not fail the
    # change that caused it, but it is logged so someone can see mail is not going out.
    try:
        send_mass_mail(messages, fail_silently=False)
    except Exception:
        logger.exception("could not send %d notification e-mail(s)", len(messages))
