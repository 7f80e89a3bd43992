"""Where a command's pipeline runs: in this process (the default), or as a Prefect flow run.

In process, the pipeline's units run on threads (`[workers]` of the settings) with the same
limiter, breakers and retries as in a flow, and no Prefect server is started. A command runs
as a flow run, shown in the Prefect UI, with `--prefect`, when `PREFECT_API_URL` is set, or
when a `vectorflow up` stack of the same data dir is running; it then pays a flow run's
overhead, never a server's start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vectorflow.errors import InvalidInput

MODE_HELP = (
    "run as a flow run on a Prefect server (PREFECT_API_URL, or the `vectorflow up` stack of "
    "this data dir); default: in this process, without Prefect, unless one of those is set"
)


def add_mode_option(parser: argparse.ArgumentParser) -> None:
    """The `--prefect` option of a command that runs a pipeline."""
    parser.add_argument("--prefect", action="store_true", help=MODE_HELP)


def prefect_server(data_dir: Path, wanted: bool) -> str | None:
    """The Prefect API to run on (None: run in this process).

    `PREFECT_API_URL`, else a running `vectorflow up` stack of `data_dir`; `wanted` (`--prefect`)
    with neither is invalid input saying how to start one (no temporary server is started).
    """
    from vectorflow.cli.ops import live_stack_api

    url = os.environ.get("PREFECT_API_URL") or live_stack_api(data_dir)
    if url is None and wanted:
        raise InvalidInput(
            "--prefect: no Prefect server to run on; start one with `vectorflow up --detach` "
            "(or set PREFECT_API_URL)"
        )
    return url


def announce(api_url: str | None) -> None:
    """The first line a pipeline command prints (stderr): which mode it runs in."""
    if api_url:
        print(f"running as a Prefect flow run on {api_url}", file=sys.stderr, flush=True)
    else:
        print("running in this process (no Prefect; --prefect to run on a server)",
              file=sys.stderr, flush=True)  # fmt: skip


def use_server(api_url: str) -> None:
    """Point Prefect at `api_url` before any flow is imported (no temporary server)."""
    os.environ["PREFECT_API_URL"] = api_url
