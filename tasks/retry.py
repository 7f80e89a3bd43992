"""Retry only what can succeed on a second try: the task-level safety net."""

from __future__ import annotations

from vectorflow.exchanges.classify import is_transient


def retry_transient_only(task, task_run, state) -> bool:
    """Prefect retry condition: retry when the task failed with a transient error, never otherwise."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the exception is the thing being classified
        return is_transient(exc)
    return False
