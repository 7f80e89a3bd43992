"""Task runners chosen by settings: threads for units, and where the nightly's backtests run.

`[backtest] dask_address` (env `VECTORFLOW_DASK_ADDRESS`):

- `""` (default): threads of the flow's own process, one task at a time (vectorbt's numba
  kernels hold the GIL, so more threads would only add memory, one grid chunk each);
- `"local"`: a temporary Dask `LocalCluster` on 127.0.0.1 (one single-threaded worker process
  per core on small machines), started and stopped with the flow run;
- a scheduler address (`tcp://10.0.0.5:8786`): the workers of a running Dask cluster
  (`dask scheduler`, then `dask worker tcp://10.0.0.5:8786` on each host, each with VectorFlow
  installed and the data dir at the same path).
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput


def unit_task_runner() -> ThreadPoolTaskRunner:
    """Threads for a flow's units: the settings' `workers` (4 when the settings file is broken:
    the run then fails on it, not the import of the flow)."""
    try:
        workers = load_settings().workers
    except InvalidInput:
        workers = 4
    return ThreadPoolTaskRunner(max_workers=workers)


def backtest_task_runner(dask_address: str = "") -> TaskRunner:
    """The task runner for `dask_address` (see the module docstring)."""
    if not dask_address:
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if dask_address == "local":
        return DaskTaskRunner(cluster_kwargs={"host": "127.0.0.1", "dashboard_address": None})
    return DaskTaskRunner(address=dask_address)
