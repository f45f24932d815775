"""A serving process loads every live endpoint's models as it boots (loader.warm_up, called from
gunicorn's post_worker_init in platform/gunicorn.conf.py when SERVING_WARM_UP is set), and a
change of the endpoint's version is picked up by the next request."""

from __future__ import annotations

import runpy
import types
from pathlib import Path

import pytest
from django.test import Client

from apps.accounts import services as accounts
from apps.deployments.models import Endpoint, Environment
from apps.deployments.serving import loader
from tests.conftest import make_user
from tests.deployments.test_serving_loader import (  # noqa: F401  (serving_storage is a fixture)
    FEATURES,
    pickle_version,
    serving_storage,
    skops_version,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("serving_storage")]
GUNICORN_CONF = Path(__file__).resolve().parents[2] / "platform" / "gunicorn.conf.py"
PROCFILE = Path(__file__).resolve().parents[2] / "platform" / "Procfile"


@pytest.fixture
def owner(db):
    return make_user("endpoint-owner")


@pytest.fixture
def environment(db):
    return Environment.objects.create(name="production")


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty process cache, as in a process that has just started."""
    cache = loader.ModelCache(size=8)
    monkeypatch.setattr(loader, "models", cache)
    return cache


@pytest.fixture
def load_calls(monkeypatch):
    calls: list[int] = []
    real = loader.load_model

    def counting(version, *, allow_pickle):
        calls.append(version.pk)
        return real(version, allow_pickle=allow_pickle)

    monkeypatch.setattr(loader, "load_model", counting)
    return calls


def live(name, environment, owner, version, **fields) -> Endpoint:
    return Endpoint.objects.create(name=name, environment=environment, owner=owner, current_version=version, **fields)


def test_warm_up_loads_the_primary_and_canary_version_of_every_live_endpoint(owner, environment, fresh_cache):
    first, second, canary = (skops_version(owner, name=n) for n in ("churn", "fraud", "fraud-next"))
    live("churn", environment, owner, first)
    live("fraud", environment, owner, second, canary_version=canary, canary_percent=10)

    report = loader.warm_up()

    assert sorted(report.loaded) == ["churn/1", "fraud-next/1", "fraud/1"]
    assert all(fresh_cache.get(v.pk) is not None for v in (first, second, canary))


def test_warm_up_skips_retired_endpoints_and_endpoints_without_a_version(owner, environment, fresh_cache):
    retired = skops_version(owner, name="old")
    live("old", environment, owner, retired, state=Endpoint.State.RETIRED)
    Endpoint.objects.create(name="empty", environment=environment, owner=owner)

    report = loader.warm_up()

    assert report.loaded == [] and report.failed == []
    assert fresh_cache.get(retired.pk) is None


def test_a_version_served_by_two_endpoints_is_loaded_once(owner, environment, fresh_cache, load_calls):
    version = skops_version(owner, name="shared")
    live("a", environment, owner, version)
    live("b", environment, owner, version)

    loader.warm_up()

    assert load_calls == [version.pk]


def test_a_model_that_cannot_load_is_reported_and_the_others_still_warm_up(owner, environment, fresh_cache):
    refused = pickle_version(owner, name="pickled")  # the environment does not allow pickles
    good = skops_version(owner, name="good")
    live("a-pickled", environment, owner, refused)
    live("b-good", environment, owner, good)

    report = loader.warm_up()

    assert report.loaded == ["good/1"]
    assert [(name, version_id) for name, version_id, _ in report.failed] == [("a-pickled", refused.pk)]
    assert "pickle" in report.failed[0][2]


def test_warm_up_stops_at_the_cache_size_instead_of_evicting(owner, environment, monkeypatch):
    cache = loader.ModelCache(size=1)
    monkeypatch.setattr(loader, "models", cache)
    first, second = skops_version(owner, name="one"), skops_version(owner, name="two")
    live("one", environment, owner, first)
    live("two", environment, owner, second)

    report = loader.warm_up()

    assert report.loaded == ["one/1"] and report.skipped == [("two", second.pk)]


def test_after_warm_up_the_first_request_loads_nothing(owner, environment, fresh_cache, load_calls):
    version = skops_version(owner, name="churn")
    live("churn", environment, owner, version)
    loader.warm_up()
    assert load_calls == [version.pk]
    _, secret = accounts.create_token(user=owner, name="serving")

    response = Client().post(
        "/serve/churn/invocations",
        data={"dataframe_split": FEATURES.head(2).to_dict(orient="split")},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )

    assert response.status_code == 200, response.content
    assert load_calls == [version.pk]


def test_a_new_version_on_the_endpoint_is_loaded_once_by_the_next_request(owner, environment, fresh_cache, load_calls):
    first = skops_version(owner, name="churn")
    endpoint = live("churn", environment, owner, first)
    loader.warm_up()
    second = skops_version(owner, model=first.registered_model)
    Endpoint.objects.filter(pk=endpoint.pk).update(current_version=second, previous_version=first)
    _, secret = accounts.create_token(user=owner, name="serving")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"dataframe_split": FEATURES.head(2).to_dict(orient="split")}

    answers = [
        client.post("/serve/churn/invocations", data=body, content_type="application/json")["X-Causeway-Model-Version"]
        for _ in range(3)
    ]

    assert answers == ["churn/2"] * 3
    assert load_calls == [first.pk, second.pk]


# --- The gunicorn hook --------------------------------------------------------------------------


def gunicorn_settings() -> dict:
    return runpy.run_path(str(GUNICORN_CONF))


def fake_worker() -> types.SimpleNamespace:
    messages: list[str] = []
    beats: list[bool] = []
    return types.SimpleNamespace(
        log=types.SimpleNamespace(info=lambda text, *args: messages.append(text % args)),
        notify=lambda: beats.append(True),
        messages=messages,
        beats=beats,
    )


def test_the_gunicorn_hook_warms_up_when_serving_warm_up_is_set(owner, environment, fresh_cache, monkeypatch):
    version = skops_version(owner, name="churn")
    live("churn", environment, owner, version)
    monkeypatch.setenv("SERVING_WARM_UP", "1")
    worker = fake_worker()

    gunicorn_settings()["post_worker_init"](worker)

    assert fresh_cache.get(version.pk) is not None
    assert worker.messages == ["serving warm-up: 1 loaded, 0 failed, 0 skipped"]


def test_the_gunicorn_hook_tells_the_arbiter_the_worker_is_alive_before_each_model(
    owner, environment, fresh_cache, monkeypatch
):
    for name in ("a", "b"):
        live(name, environment, owner, skops_version(owner, name=name))
    monkeypatch.setenv("SERVING_WARM_UP", "1")
    worker = fake_worker()

    gunicorn_settings()["post_worker_init"](worker)

    assert len(worker.beats) == 2


def test_the_gunicorn_hook_does_nothing_in_the_web_process(owner, environment, fresh_cache, monkeypatch, load_calls):
    live("churn", environment, owner, skops_version(owner, name="churn"))
    monkeypatch.delenv("SERVING_WARM_UP", raising=False)

    gunicorn_settings()["post_worker_init"](fake_worker())

    assert load_calls == []


def test_the_procfile_serve_entry_turns_warm_up_on_and_web_does_not():
    entries = dict(line.split(":", 1) for line in PROCFILE.read_text().splitlines() if ":" in line)
    assert "SERVING_WARM_UP=1" in entries["serve"]
    assert "SERVING_WARM_UP" not in entries["web"]
