"""Per-caller request budgets for the token-authenticated APIs.

A fixed window counted in the cache: one `incr` per request (plus one `add` when a window
opens), so the check stays O(1) on the MLflow API's hot path (`log_metric` is one request per
point). With Redis (REDIS_URL) every web process shares the counts; with the per-process cache
each process counts alone, so the effective limit is the rate times the number of processes.

Rates are settings (`API_RATE_LIMIT`, `MLFLOW_API_RATE_LIMIT`) in DRF's notation, e.g.
"1200/minute"; an empty value or "0" turns the limit off (tests and benchmarks raise them).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from apps.core.middleware import client_ip

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """(requests, seconds) from "600/minute" (or "10/s", "5000/hour"); None when off."""
    if not rate or rate.strip() in {"0", "off", "none"}:
        return None
    count, _, period = rate.strip().partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"Invalid rate {rate!r}: use e.g. '600/minute'.")
    return (int(count), seconds) if int(count) > 0 else None


def hit(key: str, rate: str | None) -> int | None:
    """Count one request for `key`; None while under the rate, else the seconds until the
    window resets (for Retry-After)."""
    parsed = parse_rate(rate)
    if parsed is None:
        return None
    limit, period = parsed
    now = time.time()
    window = int(now // period)
    cache_key = f"ratelimit:{key}:{period}:{window}"
    try:
        count = cache.incr(cache_key)
    except ValueError:  # the window's first request: the key does not exist yet
        count = 1 if cache.add(cache_key, 1, timeout=period + 1) else cache.incr(cache_key)
    if count <= limit:
        return None
    return max(1, int((window + 1) * period - now))


def caller_key(request, user) -> str:
    """One budget per signed-in user (all their tokens together, so minting tokens does not
    raise it); per client address for anonymous callers."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return f"ip:{client_ip(request) or '-'}"


class CallerRateThrottle(BaseThrottle):
    """DRF throttle for /api/v1 (REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]). Answers 429 in the
    API's error shape, with Retry-After."""

    def allow_request(self, request, view) -> bool:
        self.retry_after = hit("api:" + caller_key(request, request.user), settings.API_RATE_LIMIT)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after
