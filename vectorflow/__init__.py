"""VectorFlow: crypto market data into a Parquet lake and a DuckDB catalog, run by Prefect."""

from __future__ import annotations

__version__ = "0.1.0"
