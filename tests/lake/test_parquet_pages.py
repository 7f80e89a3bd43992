"""Lake files are laid out so that DuckDB reads their dictionary-encoded columns as dictionaries."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from vectorflow.lake.schema import CANDLES
from vectorflow.lake.storage import LocalStorage

MINUTE = 60_000


def _candles(n: int) -> pa.Table:
    row = {f.name: [None] * n for f in CANDLES.schema}
    row.update(
        exchange=["binance"] * n, market=["spot"] * n, symbol=["BTC/USDT"] * n,
        timeframe=["1m"] * n, open_time=[i * MINUTE for i in range(n)], open=[1.0] * n,
        high=[1.0] * n, low=[1.0] * n, close=[1.0] * n, volume=[1.0] * n,
        ingested_at=[0] * n,
    )  # fmt: skip
    return pa.table(row, schema=CANDLES.schema)


def _vector_types(path) -> list[tuple[str, int]]:
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT vector_type(exchange), count(*) FROM read_parquet('{path}') "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def test_no_duckdb_vector_of_a_written_file_spans_two_pages(tmp_path):
    n = 50_000
    table = _candles(n)
    path = LocalStorage(tmp_path, tmp_path).write(table, tmp_path, 0, (n - 1) * MINUTE)
    assert pq.read_table(path).equals(table)
    # Pages of 20,480 rows end where DuckDB's 2,048-row vectors do: every vector of the
    # one-value column is read as a dictionary (grouped by it at the cost of one value).
    assert _vector_types(path) == [("DICTIONARY_VECTOR", n)]
    # Pages of 20,000 rows (pyarrow's default) end inside a vector: that vector is read flat.
    misaligned = tmp_path / "misaligned.parquet"
    pq.write_table(table, misaligned, compression="zstd", max_rows_per_page=20_000)
    assert ("FLAT_VECTOR", 2 * 2048) in _vector_types(misaligned)
