"""numba's on-disk cache: where the compiled kernels of the signals and of vectorbt live.

numba compiles vectorbt's kernels on first use (~18 s here, ~5 s from its on-disk cache), and
the signals' `@njit(cache=True)` loops once per install. The cache must live on persistent disk
and `NUMBA_CACHE_DIR` must be set before numba reads it (at import, and where each cached
function is decorated): `use_numba_cache()` sets it (an existing `NUMBA_CACHE_DIR` wins; default
`~/.cache/vectorflow/numba`). It is called where numba is used, never on import: first thing in
the CLI (whose flows, and the workers `vectorflow up` starts, inherit it) and in
`vectorflow.backtest.run.run_strategy`, the entry of every grid (in a Dask worker too).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_NUMBA_CACHE = Path("~/.cache/vectorflow/numba")


def use_numba_cache(env: MutableMapping[str, str] = os.environ) -> Path:
    """Point numba's on-disk cache at NUMBA_CACHE_DIR (default ~/.cache/vectorflow/numba)."""
    path = Path(env.get("NUMBA_CACHE_DIR") or DEFAULT_NUMBA_CACHE).expanduser()
    env["NUMBA_CACHE_DIR"] = str(path)
    if env is os.environ and "numba" in sys.modules:
        from numba.core import config

        if config.CACHE_DIR != str(path):
            config.reload_config()  # numba read its settings at import: make it see the cache dir
            if "vectorbt" in sys.modules:
                log.warning("vectorbt was imported before NUMBA_CACHE_DIR was set: not cached")
    return path
