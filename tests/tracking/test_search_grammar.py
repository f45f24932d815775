"""The MLflow search grammar: filters and order_by for runs and experiments (apps.tracking.search).

The rows are described in tests/tracking/search_fixtures.py."""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

from apps.tracking.models import Experiment, Run
from apps.tracking.search import (
    Comparison,
    SearchError,
    filter_experiments,
    filter_runs,
    order_experiments,
    order_runs,
    parse_experiment_filter,
    parse_run_filter,
)
from tests.tracking.search_fixtures import build_experiments, build_runs, mlflow_runs, run_id

ALL = {"alpha", "beta", "gamma", "delta", "epsilon"}


@pytest.fixture
def runs(db) -> dict[str, Run]:
    return build_runs()


@pytest.fixture
def searched(runs) -> QuerySet[Run]:
    return Run.objects.filter(experiment=runs["alpha"].experiment)


@pytest.fixture
def experiments(db) -> dict[str, Experiment]:
    return build_experiments()


def names(queryset) -> list[str]:
    return [run.name for run in queryset]


# --- Filters that match ---------------------------------------------------------------------

VALID_RUN_FILTERS = [
    ("", ALL),
    ("   ", ALL),
    # metrics: NaN fails every comparison but != (IEEE, as MLflow); a missing metric fails all
    ("metrics.rmse < 0.5", {"alpha", "epsilon"}),
    ("metric.rmse <= 0.3", {"alpha", "epsilon"}),
    ("metrics.rmse > 0.5", {"beta"}),
    ("metrics.rmse >= -1e3", {"alpha", "beta", "epsilon"}),
    ("metrics.rmse = 0.3", {"alpha", "epsilon"}),
    ("metrics.rmse != 0.3", {"beta", "gamma"}),
    ("metrics.rmse > .5", {"beta"}),
    ("metrics.rmse < 5E-1", {"alpha", "epsilon"}),
    ("metrics.rmse<0.5", {"alpha", "epsilon"}),
    ("metrics.`val loss` < 1", {"delta"}),
    ('metrics."val loss" < 1', {"delta"}),
    ("`metrics`.acc > 0.85", {"alpha", "delta"}),
    ("metrics.rmse < 0.5 and metrics.rmse > 0.1 and metrics.acc > 0.85", {"alpha"}),
    # params and tags: != means "has the key with another value"
    ("params.model = 'rf'", {"alpha"}),
    ('params.model = "rf"', {"alpha"}),
    ("parameters.model != 'rf'", {"beta", "gamma", "delta", "epsilon"}),
    ("param.depth != '5'", {"beta"}),
    ("params.model LIKE 'rf%'", {"alpha", "epsilon"}),
    ("params.model ILIKE 'rf%'", {"alpha", "gamma", "epsilon"}),
    ("params.model LIKE 'r_'", {"alpha"}),
    ("params.model LIKE 'rf\\_%'", {"epsilon"}),
    ("params.depth IS NULL", {"gamma", "delta", "epsilon"}),
    ("params.depth IS NOT NULL", {"alpha", "beta"}),
    ("tags.team = 'vision'", {"alpha", "gamma"}),
    ("tag.team != 'vision'", {"beta"}),
    ("tags.team IS NULL", {"delta", "epsilon"}),
    ("tags.note LIKE 'H%'", {"alpha"}),
    ("tags.note ILIKE 'h%'", {"alpha", "beta"}),
    ("tags.note LIKE '50\\% off'", {"epsilon"}),
    ("tags.note LIKE '[draft]%'", {"delta"}),
    ("tags.note LIKE '%*wip*'", {"delta"}),
    ("tags.`my tag` = 'x y'", {"delta"}),
    ("tags.\"mlflow.runName\" = 'alpha'", {"alpha"}),
    ("tags.mlflow.runName = 'beta'", {"beta"}),
    # attributes
    ("attributes.status = 'FINISHED'", {"alpha", "delta", "epsilon"}),
    ("status != 'FINISHED'", {"beta", "gamma"}),
    ("attr.status LIKE 'F%'", {"alpha", "beta", "delta", "epsilon"}),
    ("run_name = 'alpha'", {"alpha"}),
    ("attributes.run_name LIKE '%a'", {"alpha", "beta", "gamma", "delta"}),
    ("\"Run name\" = 'beta'", {"beta"}),
    ("run.start_time >= 3000", {"gamma", "delta", "epsilon"}),
    ("created < 2000", {"alpha"}),
    ("end_time != 2000", {"delta", "epsilon"}),
    ("end_time > 0", {"alpha", "delta", "epsilon"}),
    ("start_time > 1.5e3", {"beta", "gamma", "delta", "epsilon"}),
    ("start_time < 1000.5", {"alpha"}),
    ("start_time = 1000.5", set()),
    ("start_time != 1000.5", ALL),
    ("user_id = 'alice'", {"alpha", "gamma", "epsilon"}),
    ("user_id ILIKE 'BO%'", {"beta", "delta"}),
    (f"run_id = '{run_id('gamma')}'", {"gamma"}),
    (f"run_id IN ('{run_id('alpha')}', \"{run_id('beta')}\",)", {"alpha", "beta"}),
    (f"attributes.run_id NOT IN ('{run_id('alpha')}')", ALL - {"alpha"}),
    ("artifact_uri LIKE 's3://%'", {"alpha"}),
    # datasets: a blank context is no context
    ("datasets.name = 'sales'", {"alpha", "delta"}),
    ("dataset.context = 'training'", {"alpha"}),
    ("datasets.context != 'training'", {"beta"}),
    ("datasets.digest IN ('d1', 'd3')", {"alpha", "delta"}),
    ("datasets.name NOT IN ('sales')", {"beta"}),
    # AND in any case, keywords in any case
    ("metrics.rmse < 0.5 and params.model = 'rf'", {"alpha"}),
    ("metrics.rmse < 0.5 AND tags.team = 'vision' aNd status = 'FINISHED'", {"alpha"}),
    ("params.model like 'rf%' and tags.team is not null", {"alpha"}),
]


@pytest.mark.parametrize(("filter_string", "expected"), VALID_RUN_FILTERS)
def test_run_filter_returns_the_matching_runs(searched, filter_string, expected):
    assert set(names(filter_runs(searched, filter_string))) == expected


# Where the grammar knowingly parts from MLflow: a blank filter is no filter (MLflow refuses
# whitespace), and a backslash escapes a LIKE wildcard on every backend (PostgreSQL's rule).
MLFLOW_DIVERGENCES = {"   ", "params.model LIKE 'rf\\_%'", "tags.note LIKE '50\\% off'"}


@pytest.mark.parametrize(
    ("filter_string", "expected"), [case for case in VALID_RUN_FILTERS if case[0] not in MLFLOW_DIVERGENCES]
)
def test_mlflow_itself_selects_the_same_runs(filter_string, expected):
    search_utils = pytest.importorskip("mlflow.utils.search_utils")

    assert {run.info.run_name for run in search_utils.SearchUtils.filter(mlflow_runs(), filter_string)} == expected


def test_a_none_filter_leaves_the_queryset_alone(searched):
    assert filter_runs(searched, None) is searched


def test_filters_never_widen_the_callers_queryset(runs, searched):
    matched = filter_runs(Run.objects.all(), "params.model = 'rf'")

    assert set(names(matched)) == {"alpha", "stranger"}
    assert names(filter_runs(searched, "params.model = 'rf'")) == ["alpha"]


# --- Filters that are refused ---------------------------------------------------------------

INVALID_RUN_FILTERS = [
    ("metrics.rmse < 0.5 OR params.model = 'rf'", "'OR' at position 19"),
    ("metrics.rmse < 0.5 or params.model = 'rf'", "MLflow has no OR"),
    ("(metrics.rmse < 0.5)", "Parentheses are not supported"),
    ("metrics.rmse", "expected a comparator"),
    ("metrics.rmse <", "expected a value after 'metrics.rmse <' at position 14, found end of input"),
    ("metrics.rmse == 0.5", "Invalid comparator '=='"),
    ("metrics.rmse <> 0.5", "Invalid comparator '<>'"),
    ("metrics.rmse LIKE '0.5'", "Invalid comparator 'LIKE' for metric 'rmse'"),
    ("metrics.rmse = 'abc'", "Expected numeric value type for metric. Found 'abc'"),
    ("metrics.rmse IS NULL", "IS NULL / IS NOT NULL is only supported for parameters and tags, not for metric 'rmse'"),
    ("params.model = rf", "not quoted"),
    ("params.model = 5", "Expected a quoted string value for parameter"),
    ("params.model IN ('a')", "Invalid comparator 'IN' for parameter 'model'"),
    ("tags.team NOT IN ('a')", "Invalid comparator 'NOT IN' for tag 'team'"),
    ("foo.bar = 'x'", "Invalid entity type 'foo'"),
    ("Metrics.rmse < 1", "Invalid entity type 'Metrics'"),
    ("rmse < 1", "Invalid attribute key 'rmse'"),
    ("attributes.lifecycle_stage = 'active'", "Invalid attribute key 'lifecycle_stage'"),
    ("datasets.source = 'x'", "Invalid dataset key 'source'"),
    ("status IN ('FINISHED')", "Only ['run_id'] attributes support comparison with a list"),
    ("run_id IN ()", "non-empty list of string values, but got empty list"),
    ("run_id IN ('a', 5)", "but got '5' at position 16"),
    ("run_id IN ('a' 'b')", "expected ',' or ')' at position 15"),
    ("run_id IN 'a'", "Expected a parenthesised list of quoted strings after IN"),
    ("run_id = ('a')", "expected a value after 'run_id ='"),
    ("start_time > 'yesterday'", "Expected numeric value type for numeric attribute: start_time"),
    ("start_time LIKE '1%'", "Invalid comparator 'LIKE' for attribute 'start_time'"),
    ("status = 5", "Expected a quoted string value for attributes"),
    ("params.model = 'rf", "Unterminated string starting at position 15"),
    ("metrics.`rmse < 1", "Unterminated backticked name starting at position 8"),
    ("metrics.rmse < 0.5 and", "expected an identifier such as metrics.rmse at position 22, found end of input"),
    ("metrics.rmse < 0.5 params.model = 'rf'", "expected AND at position 19, found 'params'"),
    ("metrics.rmse < 0.5 and and", "found 'and'"),
    ("tags.team = 'a' AND NOT tags.x = 'b'", "found 'NOT'"),
    ("metrics. < 1", "expected a key after '.'"),
    ("metrics.val-loss < 1", "Unexpected character '-' at position 11"),
    ("metrics.rmse < 1abc", "Invalid number '1abc' at position 15"),
    ("params.model NOT LIKE 'x'", "Expected IN after NOT"),
    ("params.model IS 'x'", "Expected NULL after IS"),
    ("metrics.rmse < 0.5; DROP TABLE tracking_run", "Unexpected character ';' at position 18"),
]


@pytest.mark.parametrize(("filter_string", "message"), INVALID_RUN_FILTERS)
def test_run_filter_is_refused_with_a_message_naming_the_problem(filter_string, message):
    with pytest.raises(SearchError) as refused:
        parse_run_filter(filter_string)

    assert message in str(refused.value)


def test_search_error_is_a_value_error():
    assert issubclass(SearchError, ValueError)


# --- What the parser produces ---------------------------------------------------------------


def test_parse_run_filter_returns_typed_comparisons_with_positions():
    comparisons = parse_run_filter(
        "metrics.rmse < -1.5e-3 and tags.\"a.b\" = 'it''s' and created >= 10 and run_id IN ('x', 'y')"
    )

    assert comparisons == [
        Comparison(entity="metric", key="rmse", comparator="<", value=-0.0015, position=0),
        Comparison(entity="tag", key="a.b", comparator="=", value="it's", position=27),
        Comparison(entity="attribute", key="start_time", comparator=">=", value=10, position=52),
        Comparison(entity="attribute", key="run_id", comparator="IN", value=("x", "y"), position=70),
    ]


def test_metric_values_are_floats_and_keywords_are_upper_cased():
    (metric,) = parse_run_filter("metric.acc = 1")
    (nullness,) = parse_run_filter("params.p is not null")

    assert metric.value == 1.0 and isinstance(metric.value, float)
    assert nullness.comparator == "IS NOT NULL"


def test_a_backslash_quote_stands_for_the_quote_and_other_backslashes_stay():
    (quote, backslash) = parse_run_filter("params.a = 'it\\'s' and params.b = 'C:\\temp'")

    assert quote.value == "it's"
    assert backslash.value == "C:\\temp"


# --- order_by -------------------------------------------------------------------------------

RUN_ORDERS = [
    (None, ["delta", "epsilon", "gamma", "beta", "alpha"]),
    ([], ["delta", "epsilon", "gamma", "beta", "alpha"]),
    # numbers, then NaN, then missing, in both directions; ties by start_time DESC then run id
    (["metrics.rmse"], ["epsilon", "alpha", "beta", "gamma", "delta"]),
    (["metrics.rmse ASC"], ["epsilon", "alpha", "beta", "gamma", "delta"]),
    (["metrics.rmse DESC"], ["beta", "epsilon", "alpha", "gamma", "delta"]),
    (["params.depth"], ["beta", "alpha", "delta", "epsilon", "gamma"]),
    (["params.depth desc"], ["alpha", "beta", "delta", "epsilon", "gamma"]),
    (["tags.team"], ["beta", "gamma", "alpha", "delta", "epsilon"]),
    (["start_time ASC"], ["alpha", "beta", "gamma", "delta", "epsilon"]),
    (["attributes.start_time DESC"], ["delta", "epsilon", "gamma", "beta", "alpha"]),
    (["created"], ["alpha", "beta", "gamma", "delta", "epsilon"]),
    (["end_time DESC"], ["delta", "epsilon", "alpha", "gamma", "beta"]),
    (["end_time ASC"], ["alpha", "epsilon", "delta", "gamma", "beta"]),
    (["attributes.run_name DESC"], ["gamma", "epsilon", "delta", "beta", "alpha"]),
    (["user_id"], ["epsilon", "gamma", "alpha", "delta", "beta"]),
    (["status", "run_id DESC"], ["beta", "epsilon", "delta", "alpha", "gamma"]),
    (["tags.team DESC", "metrics.rmse"], ["alpha", "gamma", "beta", "epsilon", "delta"]),
    (["tags.`mlflow.runName`"], ["alpha", "beta", "delta", "epsilon", "gamma"]),
]


@pytest.mark.parametrize(("order_by", "expected"), RUN_ORDERS)
def test_runs_are_ordered_as_mlflow_orders_them(searched, order_by, expected):
    assert names(order_runs(searched, order_by)) == expected


@pytest.mark.parametrize(("order_by", "expected"), RUN_ORDERS)
def test_mlflow_itself_orders_runs_the_same_way(order_by, expected):
    search_utils = pytest.importorskip("mlflow.utils.search_utils")

    assert [run.info.run_name for run in search_utils.SearchUtils.sort(mlflow_runs(), order_by)] == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.rmse DESC"], ["beta", "epsilon", "alpha"]),
        (["metrics.rmse ASC"], ["epsilon", "alpha", "beta"]),
        (["metrics.rmse", "metrics.acc DESC"], ["alpha", "epsilon", "beta"]),
    ],
)
def test_ordering_by_a_filtered_metric_reuses_the_filter_join(searched, order_by, expected):
    ordered = order_runs(filter_runs(searched, "metrics.rmse < 1"), order_by)

    assert names(ordered) == expected
    assert str(ordered.query).count("tracking_latestmetric") == len(order_by)


def test_a_metric_filtered_with_not_equal_still_sorts_nan_after_numbers(searched):
    ordered = order_runs(filter_runs(searched, "metrics.rmse != 0.5"), ["metrics.rmse DESC"])

    assert names(ordered) == ["beta", "epsilon", "alpha", "gamma"]


INVALID_RUN_ORDERS = [
    (["metrics.rmse DOWN"], "Invalid ordering key in order_by clause 'metrics.rmse DOWN'"),
    (["metrics.rmse ASC extra"], "Could not be parsed: unexpected 'extra'"),
    (["metrics.rmse ASC, params.p"], "Could not be parsed: unexpected ','"),
    (["foo.bar"], "Invalid entity type 'foo'"),
    (["lifecycle_stage"], "Invalid attribute key 'lifecycle_stage'"),
    (["`run name`"], "Invalid attribute key 'run name'"),
    (["datasets.name"], "Invalid order_by entity type 'dataset'"),
    (["metrics.rmse", "metric.rmse DESC"], "`order_by` contains duplicate fields"),
    (["created", "start_time DESC"], "`order_by` contains duplicate fields"),
    ([""], "Invalid order_by clause ''"),
    (["`metrics.rmse"], "Unterminated backticked name"),
]


@pytest.mark.parametrize(("order_by", "message"), INVALID_RUN_ORDERS)
def test_run_order_by_is_refused_with_a_message_naming_the_problem(searched, order_by, message):
    with pytest.raises(SearchError) as refused:
        order_runs(searched, order_by)

    assert message in str(refused.value)


# --- One query -------------------------------------------------------------------------------


def test_a_filtered_and_ordered_search_is_one_query(searched, django_assert_num_queries):
    matched = order_runs(
        filter_runs(
            searched,
            "metrics.rmse < 1 and metrics.acc != 2 and params.model != 'x' and tags.team IS NOT NULL "
            "and datasets.name = 'sales' and user_id = 'alice' and status LIKE 'F%'",
        ),
        ["metrics.rmse DESC", "params.depth", "tags.team", "user_id"],
    )

    with django_assert_num_queries(1):
        assert names(matched) == ["alpha"]


def test_ordering_by_children_never_repeats_a_run(searched):
    ordered = order_runs(searched, ["metrics.rmse", "metrics.acc", "params.model", "tags.note", "tags.team"])

    assert sorted(names(ordered)) == sorted(ALL)


# --- Experiments -----------------------------------------------------------------------------

VALID_EXPERIMENT_FILTERS = [
    ("", {"alpha-exp", "beta-exp", "gamma"}),
    ("name = 'gamma'", {"gamma"}),
    ("attribute.name LIKE '%exp'", {"alpha-exp", "beta-exp"}),
    ("name LIKE 'BETA%'", set()),
    ("name ILIKE 'BETA%'", {"beta-exp"}),
    ("name != 'gamma'", {"alpha-exp", "beta-exp"}),
    ("creation_time > 150", {"beta-exp", "gamma"}),
    ("last_update_time <= 300", {"beta-exp", "gamma"}),
    ("tags.team = 'vision'", {"alpha-exp"}),
    ("tag.team != 'vision'", {"beta-exp"}),
    ("tags.team LIKE 'v%'", {"alpha-exp"}),
    ("tags.team IS NULL", {"gamma"}),
    ("tags.x IS NOT NULL", {"beta-exp"}),
    ("name LIKE '%exp' and tags.team ILIKE 'NLP'", {"beta-exp"}),
]


@pytest.mark.parametrize(("filter_string", "expected"), VALID_EXPERIMENT_FILTERS)
def test_experiment_filter_returns_the_matching_experiments(experiments, filter_string, expected):
    assert {e.name for e in filter_experiments(Experiment.objects.all(), filter_string)} == expected


def test_experiments_filter_by_id_and_id_lists(experiments):
    first, third = experiments["alpha-exp"].pk, experiments["gamma"].pk
    everything = Experiment.objects.all()

    assert [e.name for e in filter_experiments(everything, f"experiment_id = '{first}'")] == ["alpha-exp"]
    by_list = filter_experiments(everything, f"experiment_id IN ('{first}', '{third}')")
    assert {e.name for e in by_list} == {"alpha-exp", "gamma"}
    assert [e.name for e in filter_experiments(everything, f"experiment_id NOT IN ('{first}', '{third}')")] == [
        "beta-exp"
    ]


INVALID_EXPERIMENT_FILTERS = [
    ("metrics.x > 1", "Invalid entity type 'metrics'. Valid values are ['attribute', 'tag', 'tags']"),
    ("attributes.name = 'x'", "Invalid entity type 'attributes'"),
    ("lifecycle_stage = 'active'", "Invalid attribute key 'lifecycle_stage'"),
    ("name IN ('a')", "Invalid comparator 'IN' for attribute 'name'"),
    ("experiment_id LIKE '1%'", "Invalid comparator 'LIKE' for attribute 'experiment_id'"),
    ("experiment_id = 'abc'", "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."),
    ("experiment_id = 1", "Expected a quoted string value for attributes"),
    ("creation_time > 1.5", "Invalid value for numeric attribute 'creation_time': '1.5'"),
    ("name IS NULL", "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"),
    ("name = 'a' OR name = 'b'", "'OR' at position 11"),
]


@pytest.mark.parametrize(("filter_string", "message"), INVALID_EXPERIMENT_FILTERS)
def test_experiment_filter_is_refused_with_a_message_naming_the_problem(filter_string, message):
    with pytest.raises(SearchError) as refused:
        parse_experiment_filter(filter_string)

    assert message in str(refused.value)


EXPERIMENT_ORDERS = [
    (None, ["beta-exp", "gamma", "alpha-exp"]),  # MLflow: creation_time DESC, experiment_id ASC
    (["name"], ["alpha-exp", "beta-exp", "gamma"]),
    (["name DESC"], ["gamma", "beta-exp", "alpha-exp"]),
    (["last_update_time ASC"], ["gamma", "beta-exp", "alpha-exp"]),
    (["experiment_id DESC"], ["gamma", "beta-exp", "alpha-exp"]),
    (["creation_time DESC"], ["gamma", "beta-exp", "alpha-exp"]),  # tie-breaker: experiment_id DESC
    (["attribute.creation_time", "experiment_id"], ["alpha-exp", "beta-exp", "gamma"]),
]


@pytest.mark.parametrize(("order_by", "expected"), EXPERIMENT_ORDERS)
def test_experiments_are_ordered_as_mlflow_orders_them(experiments, order_by, expected):
    assert [e.name for e in order_experiments(Experiment.objects.all(), order_by)] == expected


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["tags.team"], "Invalid order_by entity: tag"),
        (["lifecycle_stage"], "Invalid attribute key 'lifecycle_stage'"),
        (["name SIDEWAYS"], "Invalid ordering key"),
        (["name", "name DESC"], "`order_by` contains duplicate fields"),
    ],
)
def test_experiment_order_by_is_refused_with_a_message_naming_the_problem(db, order_by, message):
    with pytest.raises(SearchError) as refused:
        order_experiments(Experiment.objects.all(), order_by)

    assert message in str(refused.value)


def test_a_filtered_and_ordered_experiment_search_is_one_query(experiments, django_assert_num_queries):
    matched = order_experiments(
        filter_experiments(Experiment.objects.all(), "name LIKE '%exp' and tags.team IS NOT NULL"), ["name"]
    )

    with django_assert_num_queries(1):
        assert [e.name for e in matched] == ["alpha-exp", "beta-exp"]
