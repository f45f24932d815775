"""RowLoader: instances loaded from hand-written SQL equal the ORM's, field for field, on the
database under test (SQLite locally, PostgreSQL in CI)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts import selectors as accounts_selectors
from apps.accounts.models import PersonalAccessToken, User
from apps.accounts.roles import SCIENTIST
from apps.accounts.services import create_token, hash_token
from apps.core.rows import RowLoader
from apps.tracking import selectors as tracking_selectors
from apps.tracking.models import Run
from tests.tracking.factories import make_experiment, make_run

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_a_loaded_user_equals_the_orm_user_including_dates_and_flags(users):
    user = users["scientist"]
    User.objects.filter(pk=user.pk).update(last_login=timezone.now(), is_staff=True)
    loader = RowLoader(User, "u")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {loader.columns(connection)} FROM {User._meta.db_table} u WHERE u.id = %s", [user.pk])  # noqa: S608
        loaded = loader.load(connection, cursor.fetchone())
    expected = User.objects.get(pk=user.pk)
    assert fields_of(loaded) == fields_of(expected)
    assert loaded.last_login.tzinfo is not None and loaded.is_staff is True
    assert loaded._state.adding is False and loaded._state.db == "default"


def test_only_the_listed_fields_are_loaded_the_rest_deferred(users):
    user = users["scientist"]
    loader = RowLoader(User, "u", ["id", "username"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {loader.columns(connection)} FROM {User._meta.db_table} u WHERE u.id = %s", [user.pk])  # noqa: S608
        loaded = loader.load(connection, cursor.fetchone())
    assert loaded.get_deferred_fields() >= {"email", "password"}
    assert (loaded.pk, loaded.username, loaded.email) == (user.pk, user.username, user.email)


def test_token_by_hash_matches_the_orm_with_its_user(users):
    token, raw = create_token(user=users["scientist"], name="script", expires_in_days=3)
    PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(hours=1))
    loaded = accounts_selectors.token_by_hash(hash_token(raw))
    expected = PersonalAccessToken.objects.select_related("user").get(pk=token.pk)
    for name in ("id", "user_id", "expires_at", "last_used_at", "revoked_at"):
        assert getattr(loaded, name) == getattr(expected, name)
    assert loaded.is_active and fields_of(loaded.user) == fields_of(expected.user)
    assert accounts_selectors.token_by_hash(hash_token(raw + "x")) is None


def test_run_for_loads_the_run_with_its_experiment_and_user(users):
    owner = users["scientist"]
    experiment = make_experiment(owner, visibility="private")
    run = make_run(experiment, owner, name="r1")
    loaded = tracking_selectors.run_for(owner, run.run_uuid)
    expected = Run.objects.select_related("experiment", "user").get(pk=run.pk)
    assert fields_of(loaded) == fields_of(expected)
    assert fields_of(loaded.experiment) == fields_of(expected.experiment)
    assert fields_of(loaded.user) == fields_of(expected.user)
    assert tracking_selectors.run_for(users["nobody"], run.run_uuid) is None  # hidden: as before
    assert tracking_selectors.run_for(owner, "0" * 32) is None


def test_roles_are_read_by_name(users):
    assert accounts_selectors.roles_of(users["scientist"]) == [SCIENTIST]
    assert accounts_selectors.roles_of(User.objects.create(username="nobody-here")) == []


def test_team_ids_are_the_teams_whose_group_the_user_is_in(users):
    from apps.accounts.models import Team
    from apps.accounts.services import add_team_member, create_team

    admin, member = users["admin"], users["scientist"]
    first = create_team(name="Row team one", by=admin)
    second = create_team(name="Row team two", by=admin)
    create_team(name="Row team three", by=admin)
    add_team_member(team=first, user=member, by=admin)
    add_team_member(team=second, user=member, by=admin)
    expected = sorted(Team.objects.filter(group__user=member).values_list("pk", flat=True))
    assert accounts_selectors.team_ids_of(member) == expected == sorted([first.pk, second.pk])
    assert accounts_selectors.team_ids_of(users["nobody"]) == []
