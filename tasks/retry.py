"""Retry only what can succeed on a second try: the task-level safety net."""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE

from vectorflow.exchanges.classify import is_transient


def retry_transient_only(task, task_run, state) -> bool:
    """Prefect retry condition: retry a task that failed with a transient error, nothing else.

    The library already retries each request where it failed (`vectorflow.resilience`): an error
    it gave up on after several tries (`tries` > 1) is not retried again here, so this stays an
    outer safety net, and a rerun resumes after the pages that landed.
    """
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the exception is the thing being classified
        return is_transient(exc) and getattr(exc, "tries", 1) <= 1
    return False


#: Task options of every task that calls an exchange: a bounded count of jittered retries, only
#: for transient errors, and no result caching (writers must run every time).
EXCHANGE_TASK_OPTIONS = dict(
    retries=2,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient_only,
    cache_policy=NO_CACHE,
)
