"""Observers of served requests: a hook for apps to the right (monitoring) to learn of every
`/invocations` call without deployments importing them. An observer is registered once per
process (in its AppConfig.ready) and called after the answer is built, in the request's thread:
it must only hand the facts over (append to a buffer), never do I/O.

Each call has a request id (apps.core.middleware's, answered in the `X-Request-ID` header):
the caller's own when it sent a well-formed one, a new one otherwise. Outcomes posted later
name it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("causeway.serving")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # as apps.core.middleware


@dataclass(slots=True)
class Invocation:
    endpoint_id: int
    endpoint_name: str
    model_version_id: int | None
    request_id: str
    at: float  # time.time() when the request arrived
    latency_ms: float
    status: int
    error_kind: str  # "" when answered 200: bad_request, model_error, too_large, unavailable, …
    inputs: Any = None  # the parsed model input (DataFrame or ndarray) when it parsed
    predictions: Any = None


Observer = Callable[[Invocation], None]
_observers: list[Observer] = []


def register_invocation_observer(observer: Observer) -> None:
    if observer not in _observers:
        _observers.append(observer)


def unregister_invocation_observer(observer: Observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


def active() -> bool:
    return bool(_observers)


def notify(invocation: Invocation) -> None:
    for observer in _observers:
        try:
            observer(invocation)
        except Exception:  # an observer never breaks serving
            logger.exception("invocation observer %r failed", observer)


def request_id_from(header: str | None) -> str:
    """The caller's request id when well-formed (letters, digits, . _ -, at most 64), else a new one."""
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


_KINDS = {400: "bad_request", 413: "too_large", 415: "unsupported_media_type", 503: "unavailable"}


def error_kind_for(status: int) -> str:
    if status < 400:
        return ""
    return _KINDS.get(status, "server_error" if status >= 500 else "client_error")
