"""VectorFlow: crypto market data into a Parquet lake with a DuckDB catalog, orchestrated by Prefect."""

from __future__ import annotations

__version__ = "0.1.0"
