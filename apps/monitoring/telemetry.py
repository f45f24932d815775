"""Serving telemetry, off the request path.

The serving view calls `Recorder.observe` (registered as an invocation observer in
MonitoringConfig.ready): it appends the invocation to an in-memory deque (thread-safe, O(1)) and
returns. A daemon thread of the serving process flushes every MONITORING_FLUSH_SECONDS: it
drains the deque, groups invocations per (endpoint, version, minute), summarises their inputs
on the training profile's bins and their predictions, and adds the sums to the database in one
transaction (services.merge_minutes, correct when several processes flush the same minute).

What the request thread pays is one deque append. If the database is unavailable the aggregated
batches are kept and retried at the next flush (up to MAX_PENDING_BATCHES, then the oldest are
dropped and counted in `dropped`): telemetry may be lost under an outage, serving never waits.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import threading
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import close_old_connections

from apps.monitoring import reference, services, summaries
from apps.monitoring.models import EndpointMonitoring

logger = logging.getLogger("causeway.monitoring")

START_THREAD = True  # tests flush by hand (and the test settings never start it)
MAX_BUFFERED = 200_000  # invocations waiting for a flush; beyond, the oldest are dropped
MAX_PENDING_BATCHES = 10_000
CONFIG_TTL_SECONDS = 60.0
MAX_PAYLOAD_ROWS = 1000


def thread_enabled() -> bool:
    """The flush thread runs in every process but the test suite's, whose tests flush by hand
    (a thread outliving a test's database would write into the next one)."""
    return START_THREAD and getattr(settings, "CAUSEWAY_ENV", "") != "test"


def flush_seconds() -> float:
    return float(getattr(settings, "MONITORING_FLUSH_SECONDS", 5.0))


class _EndpointConfig:
    __slots__ = ("expires", "spec", "store_payloads", "retention_days", "reference_id")

    def __init__(self, spec: dict, store_payloads: bool, retention_days: int, reference_id: int | None):
        self.expires = time.monotonic() + CONFIG_TTL_SECONDS
        self.spec = spec
        self.store_payloads = store_payloads
        self.retention_days = retention_days
        self.reference_id = reference_id


class Recorder:
    def __init__(self) -> None:
        self._events: deque = deque(maxlen=MAX_BUFFERED)
        self._pending: list[services.MinuteBatch] = []
        self._pending_predictions: list[services.PredictionToStore] = []
        self._configs: dict[tuple[int, int | None], _EndpointConfig] = {}
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()
        self.dropped = 0
        self.flushed_requests = 0

    # --- The request path ---------------------------------------------------------------------

    def observe(self, invocation) -> None:
        """Called by the serving view: hand the invocation over, nothing else."""
        self._events.append(invocation)
        if self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked worker starts its own thread
            if thread_enabled():
                threading.Thread(target=self._run, name="causeway-telemetry", daemon=True).start()
                atexit.register(self._flush_quietly)

    def _run(self) -> None:
        while not self._stop.wait(flush_seconds()):
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("telemetry flush failed; kept for the next one")
        finally:
            close_old_connections()

    # --- Flushing -------------------------------------------------------------------------------

    def discard(self) -> None:
        """Forget everything observed and not yet written (the test suite, between tests)."""
        with self._flush_lock:
            self._events.clear()
            self._pending, self._pending_predictions = [], []

    def pending(self) -> int:
        return len(self._events)

    def drain(self) -> list:
        events = []
        pop = self._events.popleft
        for _ in range(len(self._events)):
            try:
                events.append(pop())
            except IndexError:
                break
        return events

    def flush(self) -> int:
        """Aggregate what was observed and write it; returns the number of invocations written."""
        with self._flush_lock:
            events = self.drain()
            batches, predictions = self.aggregate(events) if events else ([], [])
            batches = self._pending + batches
            predictions = self._pending_predictions + predictions
            self._pending, self._pending_predictions = [], []
            if not batches and not predictions:
                return 0
            try:
                services.merge_minutes(batches, predictions)
            except Exception:
                self._keep(batches, predictions)
                raise
            written = sum(batch.requests for batch in batches)
            self.flushed_requests += written
            return written

    def _keep(self, batches: list, predictions: list) -> None:
        overflow = max(0, len(batches) - MAX_PENDING_BATCHES)
        if overflow:
            self.dropped += sum(batch.requests for batch in batches[:overflow])
        self._pending = batches[overflow:]
        self._pending_predictions = predictions[-MAX_PENDING_BATCHES * 10 :]

    def aggregate(self, events: list) -> tuple[list[services.MinuteBatch], list[services.PredictionToStore]]:
        """Per (endpoint, version, minute): counts, latency buckets, errors, and the summaries of
        the inputs and predictions of the successful calls."""
        groups: dict[tuple, list] = defaultdict(list)
        for event in events:
            minute = int(event.at // 60) * 60
            groups[(event.endpoint_id, event.model_version_id, minute)].append(event)
        batches, records = [], []
        for (endpoint_id, version_id, minute), group in groups.items():
            at = dt.datetime.fromtimestamp(minute, tz=dt.UTC)
            batch = services.MinuteBatch(endpoint_id=endpoint_id, model_version_id=version_id, minute=at)
            answered = []
            for event in group:
                rows = _row_count(event.inputs)
                batch.add_request(latency_ms=event.latency_ms, rows=rows, error_kind=event.error_kind)
                if not event.error_kind and event.predictions is not None:
                    answered.append(event)
            if answered:
                config = self.config_for(endpoint_id, version_id)
                batch.features = summarise_inputs([e.inputs for e in answered], config.spec)
                flat = [_flat_predictions(e.predictions) for e in answered]
                batch.predictions = summarise_predictions([p for p in flat if p is not None])
                records.extend(_records(answered, flat, config))
            batches.append(batch)
        return batches, records

    def config_for(self, endpoint_id: int, version_id: int | None) -> _EndpointConfig:
        """The endpoint's payload settings and the reference spec (cached a minute, so a
        change of settings or reference is picked up without a restart)."""
        key = (endpoint_id, version_id)
        config = self._configs.get(key)
        if config is not None and config.expires > time.monotonic():
            return config
        # Unsaved defaults (the model's) when the endpoint's monitoring was never set.
        settings_row = EndpointMonitoring.objects.filter(endpoint_id=endpoint_id).first() or EndpointMonitoring(
            endpoint_id=endpoint_id
        )
        dataset_version = reference.reference_for(
            reference_version_id=settings_row.reference_version_id, model_version_id=version_id
        )
        config = _EndpointConfig(
            spec=reference.spec_of(dataset_version.profile if dataset_version else None),
            store_payloads=settings_row.store_payloads,
            retention_days=settings_row.payload_retention_days,
            reference_id=dataset_version.pk if dataset_version else None,
        )
        self._configs[key] = config
        return config

    def forget_configs(self) -> None:
        self._configs.clear()


# --- Summaries of a group's data ---------------------------------------------------------------


def _row_count(inputs: Any) -> int:
    if inputs is None:
        return 0
    try:
        return len(inputs)
    except TypeError:
        return 0


def summarise_inputs(frames: list, spec: dict[str, dict]) -> dict[str, dict]:
    """Per-column summaries of the inputs of many requests (frames with named columns; plain
    arrays are summarised by position, "0", "1", …). Frames with the same columns are
    concatenated once: reading columns frame by frame costs more than the summaries."""
    columns: dict[str, list] = defaultdict(list)
    by_columns: dict[tuple, list] = defaultdict(list)
    for frame in frames:
        if isinstance(frame, pd.DataFrame):
            by_columns[tuple(frame.columns)].append(frame)
        elif isinstance(frame, np.ndarray) and frame.ndim in (1, 2):
            matrix = frame.reshape(-1, 1) if frame.ndim == 1 else frame
            for index in range(matrix.shape[1]):
                columns[str(index)].append(matrix[:, index])
    for group in by_columns.values():
        combined = group[0] if len(group) == 1 else pd.concat(group, ignore_index=True)
        for name in combined.columns:
            columns[str(name)].append(combined[name].to_numpy())
    out = {}
    for name, parts in columns.items():
        if len(parts) == 1:
            values = parts[0]
        elif all(p.dtype.kind in "fiub" for p in parts):
            values = np.concatenate(parts)
        else:
            values = np.concatenate([p.astype(object) for p in parts])
        column_spec = spec.get(name) or {}
        if column_spec.get("kind") == "numeric":
            out[name] = summaries.summarise_column(values, edges=column_spec["edges"])
        elif column_spec.get("kind") == "categorical":
            out[name] = summaries.summarise_column(values, categories=True)
        else:
            out[name] = summaries.summarise_column(values)
    return out


def _flat_predictions(raw: Any) -> np.ndarray | None:
    """One value per row: a frame's first column, a matrix's last column (a probability)."""
    if isinstance(raw, pd.DataFrame):
        return raw.iloc[:, 0].to_numpy() if raw.shape[1] else None
    if isinstance(raw, pd.Series):
        return raw.to_numpy()
    try:
        array = np.asarray(raw)
    except (ValueError, TypeError):
        return None
    if array.ndim == 0:
        return array.reshape(1)
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        return array[:, -1]
    return None


def summarise_predictions(parts: list[np.ndarray]) -> dict:
    if not parts:
        return {}
    if all(p.dtype.kind in "fiub" for p in parts):
        values = np.concatenate(parts) if len(parts) > 1 else parts[0]
    else:
        values = np.concatenate([p.astype(object) for p in parts])
    # Class labels (integers, booleans, strings) are counted; scores and amounts binned.
    return summaries.summarise_column(values, categories=values.dtype.kind in "iubOU")


def _jsonable(values: np.ndarray | None) -> list:
    """Predictions as JSON values: numbers, strings, booleans; NaN as null, anything else as text."""
    if values is None:
        return []
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            return [None if v != v else v for v in values.tolist()]
        return values.tolist()
    if values.dtype.kind in "iubU":
        return values.tolist()
    return [v if isinstance(v, int | float | str | bool) or v is None else str(v) for v in values.tolist()]


def _records(events: list, flat: list, config: _EndpointConfig) -> list[services.PredictionToStore]:
    expires = None
    if config.store_payloads:
        expires = dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=config.retention_days)
    records = []
    for event, predictions in zip(events, flat, strict=True):
        inputs = None
        if config.store_payloads and isinstance(event.inputs, pd.DataFrame):
            inputs = json.loads(event.inputs.head(MAX_PAYLOAD_ROWS).to_json(orient="split", date_format="iso"))
        elif config.store_payloads and isinstance(event.inputs, np.ndarray):
            inputs = {"data": json.loads(pd.DataFrame(event.inputs[:MAX_PAYLOAD_ROWS]).to_json(orient="values"))}
        values = predictions[: services.MAX_STORED_PREDICTIONS] if predictions is not None else None
        records.append(
            services.PredictionToStore(
                endpoint_id=event.endpoint_id,
                model_version_id=event.model_version_id,
                request_id=event.request_id,
                created_at=dt.datetime.fromtimestamp(event.at, tz=dt.UTC),
                rows=_row_count(event.inputs),
                predictions=_jsonable(values),
                inputs=inputs,
                inputs_expire_at=expires if inputs is not None else None,
            )
        )
    return records


recorder = Recorder()
