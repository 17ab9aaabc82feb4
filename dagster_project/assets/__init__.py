"""Thin Dagster wrappers, one module per stage. Measurement logic lives outside this package."""

WAREHOUSE_POOL = "warehouse"
"""Concurrency pool of every asset that opens the warehouse (limit 1: DuckDB has one writer)."""


def table_key(qualified: str):
    """Asset key of a warehouse table: ``"marts.fct_orders"`` -> ``AssetKey(["marts", "fct_orders"])``."""
    import dagster as dg

    return dg.AssetKey(qualified.split("."))
