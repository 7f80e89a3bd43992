"""Signals: TPO / market profile, regime, traps and sweeps, open interest and funding.

Pure functions over DataFrames, one module per family (`tpo`, `regime`, `traps`,
`open_interest`, with `rows` for exact price rows and `inputs` for frames → arrays); `compute`
puts them together per series. Hot loops are numba-compiled with `cache=True`.
Definitions: docs/signals.md.
"""

from __future__ import annotations

from vectorflow.signals.compute import (
    DEV_COLUMNS,
    EXTRA_COLUMNS,
    STORED_COLUMNS,
    TRAP_EVENT_COLUMNS,
    SignalOptions,
    signals_at,
    signals_history,
    signals_recompute,
    signals_update,
    trap_events,
)

__all__ = [
    "DEV_COLUMNS",
    "EXTRA_COLUMNS",
    "STORED_COLUMNS",
    "TRAP_EVENT_COLUMNS",
    "SignalOptions",
    "signals_at",
    "signals_history",
    "signals_recompute",
    "signals_update",
    "trap_events",
]
