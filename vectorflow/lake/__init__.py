"""The Parquet lake (the truth) and the DuckDB catalog of views over it."""
