"""Failed runs that read as clear lines: invalid input and the errors VectorFlow expects.

Prefect logs a traceback for every flow and task that raised ("Encountered exception during
execution") and, in a deployment's run, again for every run that ended Failed ("Engine
execution exited with unexpected exception"): a bad date from the Run form left two, one bad
symbol four. For VectorFlow's own errors (`VectorflowError`: invalid input, units that failed,
an exchange's refusal) the message says everything: `ExpectedFailures` keeps each line and
drops its traceback, and drops the engine's closing record, whose message the run's final
state already carries ("Finished in state Failed(...)"). Any other exception (a bug) keeps its
traceback.
"""

from __future__ import annotations

import logging

from vectorflow.errors import VectorflowError

ENGINE_EXIT = "Engine execution exited with unexpected exception"


class ExpectedFailures(logging.Filter):
    """Cuts the tracebacks of VectorFlow's own errors from Prefect's run and task logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, without the traceback of an expected error; False drops it."""
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, VectorflowError):
            return True
        if record.msg == ENGINE_EXIT:
            return False  # "Finished in state Failed('...')" said it already
        record.exc_info, record.exc_text = None, None
        return True


def quiet_expected_failures() -> None:
    """Install `ExpectedFailures` on Prefect's flow-run and task-run loggers (once)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedFailures) for f in logger.filters):
            logger.addFilter(ExpectedFailures())
