"""Mergeable summaries of served data, and the drift statistics computed from them. No Django.

A column summary is a small dict that adds up: two minutes' summaries merge into the summary of
both minutes, whatever process made them.

    {"n": rows, "nulls": n,
     "bins": [counts],          # numbers, on the reference's edges: [under, bin 0..k-1, over]
     "lbins": {"key": count},   # numbers without reference edges: a fixed log scale (±1.1^k)
     "cats": {"value": count},  # anything else, by value (at most MAX_CATEGORIES, then "__other__")
     "sum": x, "sumsq": x}

Drift statistics work on binned counts, since the reference is a profile (histogram and top
values), not the training rows:
- PSI = Σ (c − r) · ln(c / r) over bins of the two proportions, empty bins smoothed by EPSILON;
- Kolmogorov–Smirnov: the largest gap between the two cumulative distributions at the bin
  edges, with its asymptotic p-value for the two sample sizes;
- Jensen–Shannon distance (base 2, in [0, 1]) between category proportions.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from apps.monitoring.models import LATENCY_BUCKETS_MS

EPSILON = 1e-4
MAX_CATEGORIES = 50
OTHER = "__other__"
LOG_GAMMA = math.log(1.1)


# --- Latency -----------------------------------------------------------------------------------


def latency_bucket(ms: float) -> int:
    """The index of the fixed bucket `ms` falls into (the last one is open-ended)."""
    return bisect_left(LATENCY_BUCKETS_MS, ms)


def percentile_from_buckets(counts: list[int], q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram, interpolated linearly inside its bucket
    (Prometheus' histogram_quantile); the open last bucket answers its lower bound."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BUCKETS_MS[index - 1] if index > 0 else 0.0
            if index >= len(LATENCY_BUCKETS_MS):
                return float(low)
            high = LATENCY_BUCKETS_MS[index]
            return float(low + (high - low) * (rank - seen) / count)
        seen += count
    return float(LATENCY_BUCKETS_MS[-1])


# --- Column summaries --------------------------------------------------------------------------


def summarise_column(values: Any, edges: list[float] | None = None, categories: bool | None = None) -> dict:
    """The summary of one column's values (a list, array or Series). Numbers go into `edges`'
    bins when given, the log scale otherwise; non-numbers (or `categories=True`) are counted."""
    array = np.asarray(values)
    if array.dtype == object:
        array = _numeric_or_object(array)
    n = int(array.shape[0]) if array.ndim else 1
    array = array.reshape(-1)
    numeric = array.dtype.kind in "fiu" and not categories
    if array.dtype.kind == "b" or categories or not numeric:
        return _summarise_categories(array, n)
    floats = array.astype(np.float64, copy=False)
    finite = np.isfinite(floats)
    good = floats[finite]
    summary: dict[str, Any] = {"n": n, "nulls": int(n - good.shape[0])}
    if good.shape[0]:
        summary["sum"] = float(good.sum())
        summary["sumsq"] = float(np.dot(good, good))
    if edges and len(edges) >= 2:
        summary["bins"] = bin_counts(good, edges)
    else:
        summary["lbins"] = log_bins(good)
    return summary


def _numeric_or_object(array: np.ndarray) -> np.ndarray:
    """An object column of numbers and None as floats (None → NaN); else left as objects."""
    kinds = {type(v) for v in array.tolist()}
    if kinds <= {int, float, type(None)} and kinds & {int, float}:
        return np.array([np.nan if v is None else v for v in array.tolist()], dtype=np.float64)
    return array


def _summarise_categories(array: np.ndarray, n: int) -> dict:
    values, counts = np.unique(array.astype(str), return_counts=True) if n else ([], [])
    nulls = 0
    cats: dict[str, int] = {}
    for value, count in zip(values, counts, strict=True):
        if value in ("None", "nan", "NaT", "<NA>"):
            nulls += int(count)
        else:
            cats[str(value)] = int(count)
    return {"n": n, "nulls": nulls, "cats": cap_categories(cats)}


def bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts in [under, bin 0, …, bin k-1, over] for the reference's edges; like numpy's
    histogram (and the catalog's profile) the last bin includes its right edge."""
    edges_array = np.asarray(edges, dtype=np.float64)
    k = len(edges) - 1
    index = np.searchsorted(edges_array, values, side="right")  # 0: below the first edge
    index[values == edges_array[-1]] = k  # the max sits in the last bin
    return np.bincount(index, minlength=k + 2).astype(int).tolist()[: k + 2]


def log_bins(values: np.ndarray) -> dict[str, int]:
    """Counts on a fixed logarithmic scale (5 % wide), mergeable without knowing the range."""
    if not values.shape[0]:
        return {}
    with np.errstate(divide="ignore"):
        magnitude = np.ceil(np.log(np.abs(values)) / LOG_GAMMA)
    magnitude = np.where(values == 0, 0, magnitude)
    keys = np.where(values == 0, 0, np.sign(values) * (np.clip(magnitude, -2000, 2000) + 3000)).astype(np.int64)
    unique, counts = np.unique(keys, return_counts=True)
    return {str(int(key)): int(count) for key, count in zip(unique, counts, strict=True)}


def log_bin_value(key: int) -> float:
    """A representative value of a log-scale bin (for charts)."""
    if key == 0:
        return 0.0
    sign = 1 if key > 0 else -1
    return sign * math.exp((abs(key) - 3000) * LOG_GAMMA) / math.sqrt(1.1)


def cap_categories(cats: dict[str, int]) -> dict[str, int]:
    if len(cats) <= MAX_CATEGORIES:
        return cats
    ranked = sorted(cats.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[: MAX_CATEGORIES - 1])
    kept[OTHER] = kept.get(OTHER, 0) + sum(count for _, count in ranked[MAX_CATEGORIES - 1 :])
    return kept


def merge_summary(into: dict, other: Mapping) -> dict:
    """Add `other` to `into` (in place) and return it."""
    for key in ("n", "nulls", "sum", "sumsq"):
        if key in other:
            into[key] = into.get(key, 0) + other[key]
    if "bins" in other:
        mine = into.get("bins")
        if mine is None or len(mine) != len(other["bins"]):
            # The reference changed (other edges): the newest binning wins from here on.
            into["bins"] = list(other["bins"])
        else:
            into["bins"] = [a + b for a, b in zip(mine, other["bins"], strict=True)]
    for key in ("lbins", "cats"):
        if key in other:
            target = into.setdefault(key, {})
            for value, count in other[key].items():
                target[value] = target.get(value, 0) + count
            if key == "cats":
                into[key] = cap_categories(target)
    return into


def merge_columns(into: dict[str, dict], other: Mapping[str, Mapping]) -> dict[str, dict]:
    for name, summary in other.items():
        merge_summary(into.setdefault(name, {}), summary)
    return into


# --- Drift statistics --------------------------------------------------------------------------


def _proportions(counts: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(counts), dtype=np.float64)
    total = array.sum()
    if total <= 0:
        return np.zeros_like(array)
    return array / total


def psi(reference: Iterable[float], current: Iterable[float], epsilon: float = EPSILON) -> float:
    """Population stability index between two binned distributions (counts or proportions on the
    same bins). Empty bins count as `epsilon` so the logarithm stays finite."""
    r = np.maximum(_proportions(reference), epsilon)
    c = np.maximum(_proportions(current), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_binned(reference: Iterable[float], current: Iterable[float]) -> float:
    """Kolmogorov–Smirnov statistic: the largest gap between the cumulative distributions,
    read at the bin edges."""
    r = np.cumsum(_proportions(reference))
    c = np.cumsum(_proportions(current))
    return float(np.max(np.abs(c - r))) if r.size else 0.0


def ks_pvalue(statistic: float, n: int, m: int) -> float | None:
    """The asymptotic two-sample p-value of a KS statistic (Kolmogorov's distribution)."""
    if n <= 0 or m <= 0:
        return None
    from scipy.special import kolmogorov

    effective = math.sqrt(n * m / (n + m))
    return float(kolmogorov(effective * statistic))


def jensen_shannon(reference: Iterable[float], current: Iterable[float]) -> float:
    """Jensen–Shannon distance (base 2): 0 for equal distributions, 1 for disjoint ones."""
    r = _proportions(reference)
    c = _proportions(current)
    m = (r + c) / 2

    def kl(p: np.ndarray, q: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))

    return math.sqrt(max(0.0, (kl(r, m) + kl(c, m)) / 2))


def aligned_categories(reference: Mapping[str, float], current: Mapping[str, float]) -> tuple[list, list, list]:
    """Both category counts on the union of their categories (reference order first)."""
    names = list(reference) + [name for name in current if name not in reference]
    return names, [reference.get(n, 0) for n in names], [current.get(n, 0) for n in names]


def aligned_log_bins(reference: Mapping[str, int], current: Mapping[str, int]) -> tuple[list[int], list, list]:
    keys = sorted({int(k) for k in reference} | {int(k) for k in current})
    return keys, [reference.get(str(k), 0) for k in keys], [current.get(str(k), 0) for k in keys]
