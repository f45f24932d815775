"""Drift statistics against known values (by hand and from SciPy), and the drift job's
reports: per-feature scores, the overall verdict and the owner's thresholds."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from apps.monitoring import drift, summaries
from apps.monitoring.models import DriftReport
from apps.monitoring.services import record_minute, update_settings
from tests.deployments.conftest import make_version
from tests.monitoring.factories import make_endpoint, make_training_data

NOW = timezone.now().replace(second=0, microsecond=0)


def test_psi_of_identical_distributions_is_zero():
    assert summaries.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_matches_a_hand_computed_value():
    # (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert summaries.psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert expected == pytest.approx(0.2747, abs=1e-4)


def test_psi_smooths_empty_bins_instead_of_dividing_by_zero():
    assert math.isfinite(summaries.psi([100, 0], [50, 50]))


def test_binned_ks_equals_scipys_two_sample_statistic_on_binned_values():
    rng = np.random.default_rng(1)
    reference = rng.integers(0, 10, 2000)
    current = np.clip(rng.integers(0, 10, 1500) + 1, 0, 9)
    ref_counts = np.bincount(reference, minlength=10)
    cur_counts = np.bincount(current, minlength=10)
    expected = scipy_stats.ks_2samp(reference, current).statistic
    assert summaries.ks_binned(ref_counts, cur_counts) == pytest.approx(expected)


def test_ks_pvalue_is_kolmogorovs_asymptotic_distribution():
    n, m, d = 2000, 1500, 0.05
    expected = scipy_stats.kstwobign.sf(d * math.sqrt(n * m / (n + m)))
    assert summaries.ks_pvalue(d, n, m) == pytest.approx(expected)


def test_jensen_shannon_matches_scipy():
    p, q = [10, 20, 70], [30, 30, 40]
    assert summaries.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2))


def test_jensen_shannon_of_disjoint_categories_is_one():
    assert summaries.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


def test_bins_follow_the_profiles_edges_with_under_and_overflow():
    counts = summaries.bin_counts(np.array([-5.0, -2.0, -0.5, 0.0, 2.0, 9.0]), [-2.0, -1.0, 0.0, 1.0, 2.0])
    assert counts == [1, 1, 1, 1, 1, 1]


def test_summaries_merge_by_adding():
    first = summaries.summarise_column(np.array([0.5, 1.5, np.nan]), edges=[0.0, 1.0, 2.0])
    second = summaries.summarise_column(np.array([0.2]), edges=[0.0, 1.0, 2.0])
    merged = summaries.merge_summary(dict(first), second)
    assert merged["n"] == 4 and merged["nulls"] == 1
    assert merged["bins"] == [0, 2, 1, 0]


# --- Reports ------------------------------------------------------------------------------------


@pytest.fixture
def endpoint(users, artifact_root):
    owner = users["engineer"]
    version = make_version(owner)
    make_training_data(version, owner)
    return make_endpoint(owner, version=version)


def _features(a_bins, regions):
    return {
        "a": {"n": sum(a_bins), "nulls": 0, "bins": a_bins},
        "region": {"n": sum(regions.values()), "nulls": 0, "cats": regions},
    }


def _serve(endpoint, a_bins, regions, minutes=10):
    for i in range(minutes):
        record_minute(
            endpoint=endpoint,
            model_version=endpoint.current_version,
            minute=NOW - dt.timedelta(minutes=i + 1),
            requests=10,
            rows=sum(a_bins),
            features=_features(a_bins, regions),
        )


def test_data_like_the_training_data_has_no_drift(endpoint):
    _serve(endpoint, [0, 10, 40, 40, 10, 0], {"north": 25, "south": 25, "east": 25, "west": 25})
    report = drift.compute_report(endpoint, now=NOW)
    assert report.verdict == "ok"
    assert report.overall_score == pytest.approx(0.0, abs=1e-6)
    assert report.reference_version is not None


def test_shifted_numbers_raise_an_alert_with_their_psi(endpoint):
    _serve(endpoint, [0, 0, 10, 40, 40, 10], {"north": 25, "south": 25, "east": 25, "west": 25})
    report = drift.compute_report(endpoint, now=NOW)
    by_name = {f["name"]: f for f in report.features}
    expected = summaries.psi([0, 100, 400, 400, 100, 0], [0, 0, 10, 40, 40, 10])
    assert by_name["a"]["psi"] == pytest.approx(expected)
    assert by_name["a"]["verdict"] == "alert"
    assert by_name["region"]["verdict"] == "ok"
    assert report.verdict == "alert"
    assert report.drifted_features == 1


def test_new_categories_count_as_other_and_drift(endpoint):
    _serve(endpoint, [0, 10, 40, 40, 10, 0], {"north": 50, "mars": 50})
    report = drift.compute_report(endpoint, now=NOW)
    region = next(f for f in report.features if f["name"] == "region")
    assert region["current"]["categories"][summaries.OTHER] == 500
    assert region["js"] > 0.5
    assert region["verdict"] == "alert"


def test_the_owners_thresholds_decide_the_verdict(endpoint):
    update_settings(
        endpoint=endpoint,
        by=endpoint.owner,
        drift_warn_psi=5.0,
        drift_alert_psi=10.0,
        drift_window_hours=24,
        store_payloads=False,
        payload_retention_days=7,
    )
    _serve(endpoint, [0, 0, 10, 40, 40, 10], {"north": 25, "south": 25, "east": 25, "west": 25})
    report = drift.compute_report(endpoint, now=NOW)
    assert report.verdict == "ok"
    assert (report.warn_threshold, report.alert_threshold) == (5.0, 10.0)


def test_features_missing_from_the_profile_are_reported_unscored(endpoint):
    record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=1), rows=50, features={"z": {"n": 50}})
    report = drift.compute_report(endpoint, now=NOW)
    assert report.features[0]["kind"] == "unscored"
    assert report.overall_score is None


def test_without_training_data_the_report_says_so(users):
    endpoint = make_endpoint(users["engineer"])
    record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=1), requests=5)
    report = drift.compute_report(endpoint, now=NOW)
    assert "No profiled training dataset" in report.note


def test_an_idle_endpoint_gets_no_report(endpoint):
    assert drift.compute_report(endpoint, now=NOW) is None
    assert not DriftReport.objects.exists()


def test_the_periodic_job_reports_on_every_live_endpoint_that_served(endpoint, users):
    make_endpoint(users["engineer"])  # idle
    _serve(endpoint, [0, 10, 40, 40, 10, 0], {"north": 100}, minutes=2)
    from apps.monitoring.tasks import compute_drift_reports

    assert compute_drift_reports() == {"reports": 1, "idle": 1}


def test_predictions_are_compared_with_the_window_before(endpoint):
    for i in range(5):
        before = NOW - dt.timedelta(hours=24, minutes=i + 1)
        record_minute(endpoint=endpoint, minute=before, rows=40, predictions={"n": 40, "cats": {"0": 30, "1": 10}})
        record_minute(
            endpoint=endpoint,
            minute=NOW - dt.timedelta(minutes=i + 1),
            rows=40,
            predictions={"n": 40, "cats": {"0": 10, "1": 30}},
        )
    report = drift.compute_report(endpoint, now=NOW)
    assert report.prediction["psi"] == pytest.approx(summaries.psi([30, 10], [10, 30]))
    assert report.verdict == "alert"
