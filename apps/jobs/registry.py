"""Which Celery task runs which kind of job. Filled by `apps.jobs.runner.job_task`."""

from __future__ import annotations

from typing import Any

_tasks: dict[str, Any] = {}
_labels: dict[str, str] = {}


def register(kind: str, task: Any, label: str) -> None:
    _tasks[kind] = task
    _labels[kind] = label


def is_known(kind: str) -> bool:
    return kind in _tasks


def task_for(kind: str) -> Any:
    return _tasks[kind]


def label_for(kind: str) -> str:
    return _labels.get(kind, kind)


def known_kinds() -> dict[str, str]:
    return dict(sorted(_labels.items()))
