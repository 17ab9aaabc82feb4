"""Thin Dagster wrappers, one module per stage. Measurement logic lives outside this package."""

WAREHOUSE_POOL = "warehouse"
"""Concurrency pool of every asset that opens the warehouse (limit 1: DuckDB has one writer)."""
