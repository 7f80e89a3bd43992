"""Helpers shared by the market-data tests."""

from __future__ import annotations

from pathlib import Path

from vectorflow.lake.catalog import connect, refresh_catalog


def query_catalog(data_dir: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on the data dir's catalog, opened read-only as users do."""
    refresh_catalog(data_dir)
    con = connect(data_dir / "vectorflow.duckdb", read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
