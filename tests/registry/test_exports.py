"""Model card exports: Markdown (Hugging Face style), JSON (Model Card Toolkit field names) and
printable HTML, from the pages and from /api/v1/; hidden models are 404 everywhere."""

import json

import pytest
import yaml
from django.urls import reverse

from apps.accounts.roles import SCIENTIST
from apps.accounts.services import create_token
from tests.conftest import make_user
from tests.registry.page_factories import (  # noqa: F401  (artifact_store is a fixture)
    FULL_CARD,
    artifact_store,
    make_model,
    make_version,
    set_card,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("artifact_store")]

# The Model Card Toolkit (schema v0.0.2) field names the JSON export writes, checked in.
EXPECTED_MCT_KEYS = {
    "": {"schema_version", "model_details", "model_parameters", "quantitative_analysis", "considerations"},
    "model_details": {"name", "overview", "version", "owners", "licenses", "references", "citations"},
    "model_details.version": {"name", "date"},
    "model_details.owners[]": {"name", "contact"},
    "model_details.licenses[]": {"identifier"},
    "model_details.references[]": {"reference"},
    "model_details.citations[]": {"citation"},
    "model_parameters": {"model_architecture", "data"},
    "model_parameters.data": {"train", "eval"},
    "model_parameters.data.train": {"name", "link"},
    "model_parameters.data.eval": {"name", "link"},
    "quantitative_analysis": {"performance_metrics"},
    "quantitative_analysis.performance_metrics[]": {"type", "value", "slice", "confidence_interval"},
    "quantitative_analysis.performance_metrics[].confidence_interval": {"lower_bound", "upper_bound"},
    "considerations": {"users", "use_cases", "limitations", "tradeoffs", "ethical_considerations"},
    "considerations.users[]": {"description"},
    "considerations.use_cases[]": {"description"},
    "considerations.limitations[]": {"description"},
    "considerations.tradeoffs[]": {"description"},
    "considerations.ethical_considerations[]": {"name", "mitigation_strategy"},
}
EXPECTED_FRONT_MATTER_KEYS = {
    "model_name",
    "model_version",
    "license",
    "library_name",
    "tags",
    "datasets",
    "metrics",
    "model-index",
}


def key_sets(value, path="") -> dict[str, set[str]]:
    """Every object's keys, by path (`[]` for list items, merged over the items)."""
    found: dict[str, set[str]] = {}
    if isinstance(value, dict):
        found.setdefault(path, set()).update(value)
        for key, item in value.items():
            for sub, keys in key_sets(item, f"{path}.{key}" if path else key).items():
                found.setdefault(sub, set()).update(keys)
    elif isinstance(value, list):
        for item in value:
            for sub, keys in key_sets(item, f"{path}[]").items():
                found.setdefault(sub, set()).update(keys)
    return found


@pytest.fixture
def owner(users):
    return users["scientist"]


@pytest.fixture
def version(owner):
    model = make_model(owner, "churn", tags=[("domain", "retention")])
    make_version(model)
    second = make_version(model)
    set_card(second, **FULL_CARD)
    return second


def export_url(version, kind):
    return reverse(f"registry:export_{kind}", args=[version.registered_model.name, version.version])


def api_url(version, suffix=""):
    return f"/api/v1/registered-models/{version.registered_model.name}/versions/{version.version}/model-card{suffix}"


def test_json_export_uses_exactly_the_model_card_toolkit_field_names(client, owner, version):
    client.force_login(owner)
    response = client.get(export_url(version, "json"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.content)
    assert key_sets(document) == EXPECTED_MCT_KEYS
    assert document["model_details"]["name"] == "churn"
    assert document["model_details"]["version"] == {"name": "2", "date": "2026-01-01"}
    assert document["model_details"]["licenses"] == [{"identifier": "apache-2.0"}]
    metric = document["quantitative_analysis"]["performance_metrics"][0]
    assert metric == {
        "type": "auc",
        "value": "0.86",
        "slice": "",
        "confidence_interval": {"lower_bound": "0.84", "upper_bound": "0.88"},
    }
    assert {"type": "auc", "value": "0.85", "slice": "region=EU"} in document["quantitative_analysis"][
        "performance_metrics"
    ]
    assert document["considerations"]["ethical_considerations"] == [
        {"name": "Calls can feel intrusive.", "mitigation_strategy": "Cap calls per customer."}
    ]


def test_json_export_of_an_empty_card_keeps_the_top_level_shape(client, owner, version):
    client.force_login(owner)
    first = reverse("registry:export_json", args=["churn", 1])
    document = json.loads(client.get(first).content)
    assert set(document) == EXPECTED_MCT_KEYS[""]
    assert set(document["considerations"]) == EXPECTED_MCT_KEYS["considerations"]


def test_markdown_export_has_yaml_front_matter_and_the_card_sections(client, owner, version):
    client.force_login(owner)
    response = client.get(export_url(version, "markdown"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    text = response.content.decode()
    assert text.startswith("---\n")
    _, meta_text, body = text.split("---\n", 2)
    meta = yaml.safe_load(meta_text)
    assert set(meta) == EXPECTED_FRONT_MATTER_KEYS
    assert meta["license"] == "apache-2.0"
    assert meta["library_name"] == "sklearn"
    assert meta["tags"] == ["causeway", "domain"]
    assert meta["metrics"] == ["auc"]
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.86
    for heading in (
        "## Model details",
        "## Uses",
        "## Bias, risks, and limitations",
        "## Training details",
        "## Evaluation",
    ):
        assert heading in body
    assert "| region | EU | auc | 0.85 |" in body


def test_html_export_is_printable_and_never_carries_script(client, owner, version):
    client.force_login(owner)
    response = client.get(export_url(version, "html"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "@media print" in html
    assert "Scores <strong>churn</strong> risk." in html
    assert "<script" not in html
    assert "Credit decisions." in html


def test_markdown_exports_of_a_private_model_are_404_for_another_scientist(client, version):
    client.force_login(make_user("other-scientist", SCIENTIST))
    for kind in ("markdown", "json", "html"):
        assert client.get(export_url(version, kind)).status_code == 404, kind


def test_api_serves_each_export_to_the_owner(api_client, owner, version):
    api_client.force_authenticate(owner)
    response = api_client.get(api_url(version))
    assert response.status_code == 200
    assert key_sets(response.json()) == EXPECTED_MCT_KEYS
    markdown = api_client.get(api_url(version, ".md"))
    assert markdown.status_code == 200 and markdown["Content-Type"].startswith("text/markdown")
    assert set(yaml.safe_load(markdown.content.decode().split("---\n", 2)[1])) == EXPECTED_FRONT_MATTER_KEYS
    html = api_client.get(api_url(version, ".html"))
    assert html.status_code == 200 and b"<script" not in html.content


def test_api_answers_404_for_hidden_models_with_the_error_shape(api_client, version):
    other = make_user("other-scientist", SCIENTIST)
    _, secret = create_token(user=other, name="t")
    for suffix in ("", ".md", ".html"):
        response = api_client.get(api_url(version, suffix), HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert response.status_code == 404, suffix
        assert response.json()["error"]["code"] == "not_found"


def test_api_needs_authentication(api_client, version):
    assert api_client.get(api_url(version)).status_code in (401, 403)


def test_api_schema_documents_the_exports(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert "/api/v1/registered-models/{name}/versions/{version}/model-card" in paths
    markdown = paths["/api/v1/registered-models/{name}/versions/{version}/model-card.md"]["get"]
    assert "text/markdown" in markdown["responses"]["200"]["content"]
