"""Thin Dagster wrappers, one module per stage. Measurement logic lives outside this package."""

WAREHOUSE_POOL = "warehouse"
"""Concurrency pool of every asset that opens the warehouse (limit 1: both local engines
have one writer process: DuckDB's file lock; local Spark's embedded Derby metastore admits
one JVM. ``Session.needs_single_writer`` says so per engine)."""


def table_key(qualified: str):
    """Asset key of a warehouse table: ``"marts.fct_orders"`` -> ``AssetKey(["marts", "fct_orders"])``."""
    import dagster as dg

    return dg.AssetKey(qualified.split("."))


def png_markdown(png: bytes, alt: str):
    """A PNG as Dagster Markdown metadata (embedded, so the UI shows it without a file server)."""
    import dagster as dg

    from triangulate.report.plots import png_data_uri

    return dg.MetadataValue.md(f"![{alt}]({png_data_uri(png)})")
