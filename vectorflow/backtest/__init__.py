"""Nightly backtests with vectorbt: strategies, chunked parameter grids, walk-forward, metrics.

Modules of this package that need vectorbt import it inside the functions that use it, after
`vectorflow.numba_cache.use_numba_cache()` (`run.run_strategy` calls it).
"""
