"""Running a flow from the command line: its unit table, its messages and the exit code."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vectorflow.cli import OK, UNITS_FAILED, prefect_environment
from vectorflow.cli.output import format_rows
from vectorflow.errors import InvalidInput
from vectorflow.units import UnitsFailed


def row_columns(rows: Sequence[dict]) -> list[str]:
    """The columns of some result rows, in first-seen order, without those empty in every row."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    return [n for n in names if any(row.get(n) not in (None, "") for row in rows)]


def print_rows(rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Result rows as an aligned table on stdout."""
    columns = list(columns or row_columns(rows))
    print(format_rows(columns, [[row.get(c) for c in columns] for row in rows]))


def flow_rows(flow, state) -> list[dict] | None:
    """The unit rows a finished flow run returned (also when some units failed); None, with
    the error printed, when the run failed as a whole; invalid input is raised (exit 2)."""
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, UnitsFailed):
        return outcome.rows
    if isinstance(outcome, InvalidInput):
        raise outcome
    if isinstance(outcome, BaseException):
        print(f"error: the {flow.name} flow failed: {outcome}", file=sys.stderr)
        return None
    return outcome


def run_flow(flow, *, columns: Sequence[str] | None = None, **parameters) -> int:
    """Run `flow` in this process, print its unit rows, and return the exit code: 0 when every
    unit is ok, 1 when any failed or was skipped (the others landed)."""
    prefect_environment()
    state = flow(**parameters, return_state=True)
    rows = flow_rows(flow, state)
    if rows is None:
        return UNITS_FAILED
    print_rows(rows, columns)
    degraded = state.is_failed() or any(row.get("status", "ok") != "ok" for row in rows)
    if degraded and state.message:
        print(state.message, file=sys.stderr)
    return UNITS_FAILED if degraded else OK
