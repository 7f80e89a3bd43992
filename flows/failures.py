"""Failed runs that read as one clear line: invalid input and the errors VectorFlow expects.

A flow raising `InvalidInput` (a bad date from the Run form, an unknown symbol) would leave two
tracebacks in the run's logs; `fails_on_invalid_input` ends such a run `Failed` with the one
line instead. Prefect also logs a traceback for every task that raised and, in a deployment's
run, for every run whose final state is Failed ("Engine execution exited with unexpected
exception"). For VectorFlow's own errors (`VectorflowError`: invalid input, units that failed,
an exchange's refusal) the message says everything: `ExpectedFailures` keeps the line and drops
the traceback, and drops the engine's closing record when the run's state already carries the
message. Any other exception (a bug) keeps its traceback.
"""

from __future__ import annotations

import functools
import logging

from prefect import get_run_logger
from prefect.states import Failed

from vectorflow.errors import InvalidInput, VectorflowError
from vectorflow.units import UnitsFailed, error_text

ENGINE_EXIT = "Engine execution exited with unexpected exception"


class ExpectedFailures(logging.Filter):
    """Cuts the tracebacks of VectorFlow's own errors from Prefect's run and task logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, without the traceback of an expected error; False drops it."""
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, VectorflowError):
            return True
        if record.msg == ENGINE_EXIT:
            if isinstance(error, InvalidInput | UnitsFailed):
                return False  # "Finished in state Failed('...')" said it already
            record.msg, record.args = "%s: %s", (ENGINE_EXIT.split(" with")[0], error_text(error))
        record.exc_info, record.exc_text = None, None
        return True


def quiet_expected_failures() -> None:
    """Install `ExpectedFailures` on Prefect's flow-run and task-run loggers (once)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedFailures) for f in logger.filters):
            logger.addFilter(ExpectedFailures())


def fails_on_invalid_input(fn):
    """Decorate a flow function (under `@flow`): `InvalidInput` ends the run Failed with its one
    line as the message (the exception is the state's result), never a traceback."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            get_run_logger().error("invalid input: %s", exc)
            return Failed(message=f"invalid input: {exc}", data=exc)

    return run
