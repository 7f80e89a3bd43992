"""Running a pipeline from the command line, in this process or as a flow run: its unit table,
its messages and the exit code (the same in both modes)."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from vectorflow.cli import OK, UNITS_FAILED, prefect_environment
from vectorflow.cli.modes import announce, prefect_server, use_server
from vectorflow.cli.output import format_rows
from vectorflow.errors import InvalidInput
from vectorflow.settings import Settings
from vectorflow.units import UnitResult, UnitsFailed, run_message


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


def report(results: list[UnitResult]) -> int:
    """Print an in-process run's unit rows and message, as `run_flow` does for a flow run; the
    exit code."""
    print_rows([r.as_row() for r in results])
    message = run_message(results)
    if message:
        print(message, file=sys.stderr)
    return UNITS_FAILED if message else OK


def run_pipeline(
    settings: Settings,
    prefect: bool,
    flow: str,
    parameters: dict,
    local: Callable[[], list[UnitResult]],
) -> int:
    """Run a command's pipeline: `local()` in this process (then the catalog refreshed), or the
    flow `module:name` with `parameters` as a flow run when a Prefect server is wanted or
    running (`vectorflow.cli.modes`); print its units; the exit code."""
    api_url = prefect_server(settings.data_dir, prefect)
    announce(api_url)
    if api_url:
        use_server(api_url)
        prefect_environment()
        module, name = flow.split(":")
        return run_flow(getattr(importlib.import_module(module), name), **parameters)
    results = local()
    refresh_views(settings)
    return report(results)


def refresh_views(settings: Settings) -> None:
    """Rebuild the catalog's views if their definitions changed (a warning when it is locked)."""
    from vectorflow.lake.catalog import refresh_catalog

    if not refresh_catalog(settings):
        logging.getLogger("vectorflow").warning(
            "catalog locked by another session; views rebuilt on the next run"
        )
