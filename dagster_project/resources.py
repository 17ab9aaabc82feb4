"""The Dagster resource that opens the warehouse: engine-neutral, one per deployment."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from triangulate.warehouse import Session, connect, engine_name


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse, through the seam (:mod:`triangulate.warehouse`): the engine is
    ``TRIANGULATE_WAREHOUSE`` (``duckdb``, the default, or ``spark``; the dbt target follows
    the same setting), read when a connection is opened, not when the definitions are
    imported, so one process can serve several data directories.

    ``database``: DuckDB only, the database file; empty (the default) means
    ``$TRIANGULATE_HOME/warehouse.duckdb``. Spark keeps its warehouse under
    ``$TRIANGULATE_HOME/spark``."""

    database: str = ""

    @property
    def engine(self) -> str:
        return engine_name()

    @contextmanager
    def get_connection(self) -> Iterator[Session]:
        """A :class:`triangulate.warehouse.Session` for one ``with`` block."""
        with connect(self.database or None) as session:
            yield session
