"""Model cards: completeness rules, carrying a card to the next version, slice-table import
(bad input changes nothing), Markdown sanitized on render, and audited edits with a diff."""

import json
from types import SimpleNamespace

import pytest

from apps.audit.models import AuditEvent
from apps.catalog.models import Dataset, DatasetVersion
from apps.registry import cards, services
from apps.registry.models import ModelCard, RegisteredModel
from apps.tracking.errors import Forbidden, InvalidParameter, NotFound
from apps.tracking.models import RunInput, RunTag
from tests.conftest import make_user
from tests.registry.conftest import logged_run

pytestmark = pytest.mark.django_db


def full_card(**overrides) -> SimpleNamespace:
    card = {
        **cards.empty_sections(),
        "model_details": {**dict.fromkeys(cards.MODEL_DETAILS_KEYS, ""), "overview": "Churn", "owners": "Growth"},
        "intended_use": {"primary_uses": "Retention offers", "primary_users": "", "out_of_scope_uses": "Credit"},
        "factors": "Region",
        "training_data": [1],
        "training_procedure": {**cards.empty_sections()["training_procedure"], "code_version": "abc123"},
        "evaluation_data": "Holdout 2024",
        "metrics": [{"name": "auc", "value": 0.9, "threshold": 0.8, "ci_low": None, "ci_high": None, "slice": ""}],
        "quantitative_analysis": [{"slice": "region", "group": "EU", "metric": "auc", "value": 0.88}],
        "fairness_considerations": "Checked by region",
        "ethical_considerations": "None known",
        "risks_and_mitigations": "Drift; monitored",
        "caveats_and_recommendations": "Retrain quarterly",
    }
    card.update(overrides)
    return SimpleNamespace(**card)


# --- Completeness (pure) --------------------------------------------------------------------


def test_an_empty_card_scores_zero_and_lists_every_section():
    assert cards.completeness(SimpleNamespace(**cards.empty_sections())) == (0, list(cards.SECTIONS))


def test_a_card_with_every_section_filled_scores_100():
    assert cards.completeness(full_card()) == (100, [])


def test_every_section_weighs_the_same():
    score, missing = cards.completeness(full_card(factors="", evaluation_data=""))
    assert (score, missing) == (83, ["factors", "evaluation_data"])


def test_whitespace_only_text_does_not_count():
    score, missing = cards.completeness(full_card(ethical_considerations="  \n "))
    assert missing == ["ethical_considerations"] and score == 92


def test_model_details_need_both_overview_and_owners():
    details = {**full_card().model_details, "owners": ""}
    assert cards.completeness(full_card(model_details=details))[1] == ["model_details"]


def test_intended_use_needs_out_of_scope_uses():
    use = {**full_card().intended_use, "out_of_scope_uses": ""}
    assert cards.completeness(full_card(intended_use=use))[1] == ["intended_use"]


def test_training_data_notes_alone_complete_the_training_data_section():
    assert cards.completeness(full_card(training_data=[], training_data_notes="Vendor extract"))[0] == 100
    assert cards.completeness(full_card(training_data=[]))[1] == ["training_data"]


def test_metrics_need_a_numeric_value():
    rows = [{"name": "auc", "value": None, "threshold": 0.8, "ci_low": None, "ci_high": None, "slice": ""}]
    assert cards.completeness(full_card(metrics=rows))[1] == ["metrics"]


def test_training_procedure_needs_a_pipeline_source_or_a_code_version():
    procedure = {**cards.empty_sections()["training_procedure"], "hyperparameters": {"C": "1"}}
    assert cards.completeness(full_card(training_procedure=procedure))[1] == ["training_procedure"]


# --- Cards on versions ----------------------------------------------------------------------


@pytest.fixture
def owner(users):
    return users["scientist"]


@pytest.fixture
def model(owner, artifact_root):
    return services.create_registered_model(by=owner, name="churn")


def _version(owner, model, **run_kwargs):
    run = logged_run(owner, **run_kwargs)
    return services.create_model_version(by=owner, model=model, source=f"runs:/{run.run_uuid}/model")


def test_a_first_card_is_filled_from_the_run(owner, model):
    dataset = Dataset.objects.create(name="Customers", slug="customers", owner=owner)
    training = DatasetVersion.objects.create(dataset=dataset, number=1)
    evaluation = DatasetVersion.objects.create(dataset=dataset, number=2)
    run = logged_run(owner, params={"C": 1}, metrics={"auc": 0.91}, tags={"mlflow.source.git.commit": "abc123"})
    RunInput.objects.create(run=run, name="train", digest="d1", source_type="x", source="s", context="training",
                            dataset_version=training)  # fmt: skip
    RunInput.objects.create(run=run, name="eval", digest="d2", source_type="x", source="s", context="evaluation",
                            dataset_version=evaluation)  # fmt: skip
    version = services.create_model_version(by=owner, model=model, source=f"runs:/{run.run_uuid}/model")
    card = version.card
    assert card.training_data == [training.pk]
    assert card.training_procedure["code_version"] == "abc123"
    assert card.training_procedure["hyperparameters"] == {"C": "1"}
    assert card.training_procedure["training_duration"] == "1 min 30 s"
    assert card.metrics == [
        {"name": "auc", "value": 0.91, "threshold": None, "ci_low": None, "ci_high": None, "slice": ""}
    ]
    assert card.model_details["version"] == "1" and card.model_details["owners"] == "scientist"


def test_the_next_version_starts_from_the_previous_card_with_run_facts_refreshed(owner, model):
    first = _version(owner, model, params={"C": 1}, metrics={"auc": 0.8})
    services.update_card(
        by=owner,
        card=first.card,
        changes={
            "intended_use": {"primary_uses": "Retention", "primary_users": "CRM", "out_of_scope_uses": "Credit"},
            "fairness_considerations": "Checked by region",
            "metrics": [{"name": "auc", "value": 0.8, "threshold": 0.75}],
            "quantitative_analysis": [{"slice": "region", "group": "EU", "metric": "auc", "value": 0.79}],
        },
    )
    run = logged_run(owner, params={"C": 2}, metrics={"auc": 0.85})
    RunTag.objects.create(run=run, key="mlflow.source.name", value="train.py")
    second = services.create_model_version(by=owner, model=model, source=f"runs:/{run.run_uuid}/model")
    card = ModelCard.objects.get(model_version=second)
    assert card.intended_use["primary_uses"] == "Retention"
    assert card.fairness_considerations == "Checked by region"
    assert card.model_details["version"] == "2"
    assert card.training_procedure["hyperparameters"] == {"C": "2"}
    assert card.training_procedure["pipeline_source"] == "train.py"
    assert card.metrics == [
        {"name": "auc", "value": 0.85, "threshold": 0.75, "ci_low": None, "ci_high": None, "slice": ""}
    ]
    assert card.quantitative_analysis == []  # measured the previous version
    first.card.refresh_from_db()
    assert first.card.quantitative_analysis[0]["value"] == 0.79


def test_card_edits_are_audited_with_a_field_diff(owner, model):
    card = _version(owner, model).card
    services.update_card(by=owner, card=card, changes={"factors": "Region, tenure", "risks_and_mitigations": ""})
    event = AuditEvent.objects.get(action="registry.card.updated")
    assert event.object_type == "registry.modelcard" and event.object_id == str(card.pk)
    assert event.changes == {"factors": ["", "Region, tenure"]}
    assert event.actor_username == "scientist"


def test_card_edits_are_checked(owner, model):
    card = _version(owner, model).card
    with pytest.raises(InvalidParameter, match="Unknown model card field"):
        services.update_card(by=owner, card=card, changes={"factorz": "x"})
    with pytest.raises(InvalidParameter, match="metrics\\[0\\].value"):
        services.update_card(by=owner, card=card, changes={"metrics": [{"name": "auc", "value": "high"}]})
    with pytest.raises(InvalidParameter, match="dataset version"):
        services.update_card(by=owner, card=card, changes={"training_data": [99999]})
    assert not AuditEvent.objects.filter(action="registry.card.updated").exists()


def test_readers_cannot_edit_cards_and_outsiders_do_not_see_them(owner, model):
    card = _version(owner, model).card
    outsider = make_user("outsider", "Data scientists")
    with pytest.raises(NotFound):
        services.update_card(by=outsider, card=card, changes={"factors": "x"})
    RegisteredModel.objects.filter(pk=model.pk).update(visibility="organisation")
    card = ModelCard.objects.select_related("model_version__registered_model").get(pk=card.pk)
    with pytest.raises(Forbidden):
        services.update_card(by=outsider, card=card, changes={"factors": "x"})


def test_markdown_is_sanitized_on_render(owner, model):
    card = _version(owner, model).card
    services.update_card(
        by=owner,
        card=card,
        changes={
            "fairness_considerations": "**Checked** <script>alert(1)</script> [x](javascript:alert(1))",
            "model_details": {"overview": '<img src=x onerror="alert(1)">Hello'},
        },
    )
    html = cards.rendered_text(card)
    assert "<strong>Checked</strong>" in html["fairness_considerations"]
    assert "<script" not in html["fairness_considerations"]
    assert "javascript:" not in html["fairness_considerations"]
    assert "onerror" not in html["model_details.overview"]


# --- Slice-table import -----------------------------------------------------------------------

GOOD_CSV = b"slice,group,metric,value\nregion,EU,auc,0.88\nregion,US,auc,0.9\n"


def test_a_csv_slice_table_replaces_the_quantitative_analysis(owner, model):
    card = _version(owner, model).card
    services.import_slice_table(by=owner, card=card, content=GOOD_CSV, fmt="csv")
    card.refresh_from_db()
    assert card.quantitative_analysis == [
        {"slice": "region", "group": "EU", "metric": "auc", "value": 0.88},
        {"slice": "region", "group": "US", "metric": "auc", "value": 0.9},
    ]


def test_a_json_slice_table_can_be_appended(owner, model):
    card = _version(owner, model).card
    services.import_slice_table(by=owner, card=card, content=GOOD_CSV, fmt="csv")
    rows = json.dumps({"rows": [{"slice": "age", "group": "<30", "metric": "auc", "value": 0.7}]}).encode()
    services.import_slice_table(by=owner, card=card, content=rows, fmt="json", replace=False)
    card.refresh_from_db()
    assert [row["group"] for row in card.quantitative_analysis] == ["EU", "US", "<30"]


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"slice,group,metric,value\n" + b"s,g,m,1\n" * 150_000, "csv", "the limit is 1,024 KB"),
        (b"slice,group,metric,value\n" + b"s,g,m,1\n" * 1001, "csv", "more than 1000 rows"),
        (b"slice,group,metric,value\nregion,EU,auc\n", "csv", "Malformed CSV at line 2"),
        (b'slice,group,metric,value\n"region,EU,auc,0.9\n', "csv", "Malformed CSV"),
        (b"slice,group,metric\nregion,EU,auc\n", "csv", "missing value"),
        (b"slice,group,metric,value,extra\nregion,EU,auc,1,x\n", "csv", "unexpected extra"),
        (b"slice,group,metric,value\nregion,EU,auc,high\n", "csv", "row[0].value must be a number"),
        (b"slice,group,metric,value\n,EU,auc,1\n", "csv", "row[0].slice is required"),
        (b"slice,group,metric,value\n", "csv", "no rows"),
        (b"\xff\xfe\x00", "csv", "not UTF-8"),
        (b"[{", "json", "Malformed JSON"),
        (b'{"slice": "x"}', "json", "must be a list"),
        (b'[{"slice": "x", "group": "", "metric": "auc"}]', "json", "missing value"),
        (b'[{"slice": "x", "group": "", "metric": "auc", "value": NaN}]', "json", "finite number"),
        (GOOD_CSV, "xlsx", "Unsupported slice table format"),
    ],
)
def test_bad_slice_tables_are_refused_and_nothing_is_saved(owner, model, content, fmt, message):
    card = _version(owner, model).card
    services.import_slice_table(by=owner, card=card, content=GOOD_CSV, fmt="csv")
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidParameter) as refused:
        services.import_slice_table(by=owner, card=card, content=content, fmt=fmt)
    assert message in refused.value.message
    card.refresh_from_db()
    assert len(card.quantitative_analysis) == 2
    assert AuditEvent.objects.count() == events
