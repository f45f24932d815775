"""The `any` lookup: membership in a long list, one array parameter on PostgreSQL."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    group = Group.objects.create(name="any-lookup")
    users = [User.objects.create(username=f"any-{i}") for i in range(5)]
    group.user_set.add(*users[:3])
    return users, group


def test_any_matches_the_same_rows_as_in(people):
    users, _ = people
    wanted = [users[0].pk, users[3].pk, 10**9]
    assert set(User.objects.filter(pk__any=wanted)) == set(User.objects.filter(pk__in=wanted)) == {users[0], users[3]}


def test_any_on_a_foreign_key_column(people):
    users, group = people
    through = User.groups.through.objects.filter(user_id__any=[u.pk for u in users[1:]], group=group)
    assert sorted(through.values_list("user_id", flat=True)) == [users[1].pk, users[2].pk]


def test_an_empty_list_matches_nothing(people):
    assert list(User.objects.filter(pk__any=[])) == []


def test_postgresql_gets_one_array_parameter_however_long_the_list(people):
    users, _ = people
    ids = [u.pk for u in users] + list(range(10**6, 10**6 + 500))
    with CaptureQueriesContext(connection) as captured:
        assert User.objects.filter(pk__any=ids).count() == 5
    sql = captured.captured_queries[-1]["sql"]
    if connection.vendor == "postgresql":
        assert "= ANY(" in sql and " IN (" not in sql
    else:
        assert " IN (" in sql


def test_ids_given_as_strings_are_sent_as_numbers(people):
    users, group = people
    assert set(User.objects.filter(pk__any=[str(users[0].pk)])) == {users[0]}
    through = User.groups.through.objects.filter(user_id__any=[str(users[1].pk)], group=group)
    assert [row.user_id for row in through] == [users[1].pk]
