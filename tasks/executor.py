"""Pipeline steps as Prefect tasks: the executor flows hand to `vectorflow.pipelines`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from prefect import Task


class TaskExecutor:
    """Runs each pipeline step as the Prefect task that wraps it (retries, a task run each)."""

    def __init__(self, *steps: Mapping[Callable, Task]) -> None:
        self.tasks: dict[Callable, Task] = {}
        for mapping in steps:
            self.tasks.update(mapping)

    def map(self, step: Callable, calls: Sequence[tuple]) -> list[object]:
        """Submit `step`'s task once per args tuple; each run's result or exception, in order."""
        task = self.tasks[step]
        futures = [task.submit(*args) for args in calls]
        return [future.result(raise_on_failure=False) for future in futures]
