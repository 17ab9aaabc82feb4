"""The one owner of how Triangulate's local Spark warehouse is configured.

``TRIANGULATE_WAREHOUSE=spark`` keeps the warehouse under ``$TRIANGULATE_HOME/spark``: a
Hive metastore (embedded Derby, ``metastore_db/``) that names the schemas and tables, and
the tables' files (``spark-warehouse/``). Every process that opens it (the pipeline's
Python steps through :mod:`triangulate.warehouse`, and dbt's ``session`` target, which
starts its own Spark inside the dbt process) must use exactly these settings, or it would
see another, empty catalog. The dbt profile cannot import Python, so
``dbt_project/profiles.yml`` spells the same settings with ``env_var``; a test renders
both and compares them.

Embedded Derby admits one JVM at a time, so the local Spark warehouse, like DuckDB, has
one writer process: the one-slot ``warehouse`` pool still applies to it. A cluster
(Databricks) has a shared metastore and no such limit.
"""

from __future__ import annotations

import os
from pathlib import Path

from triangulate.paths import triangulate_home

SPARK_DIRNAME = "spark"
"""Folder under ``$TRIANGULATE_HOME`` holding the local Spark warehouse."""


def spark_dir(home: Path | None = None) -> Path:
    """``$TRIANGULATE_HOME/spark``: the metastore and the tables' files."""
    return (home or triangulate_home()) / SPARK_DIRNAME


def spark_conf(home: Path | None = None) -> dict[str, str]:
    """Spark settings (name -> value) of the local warehouse under ``home``.

    - ``spark.sql.warehouse.dir``: where managed tables' Parquet files live;
    - ``spark.hadoop.javax.jdo.option.ConnectionURL``: the Derby metastore database;
    - ``spark.sql.session.timeZone`` UTC: timestamps mean the same on every machine
      (DuckDB's TIMESTAMP has no zone; Spark's is read in the session zone);
    - ``spark.sql.shuffle.partitions``: a small world on two cores needs few partitions
      (Spark's default 200 spends most of a small query starting empty tasks);
    - ``spark.sql.ansi.enabled`` false: dbt-spark's session method forces it off, so the
      Python side does too and both evaluate SQL the same way;
    - ``spark.ui.enabled`` false: no web server on a port for a batch pipeline;
    - ``spark.ui.showConsoleProgress`` false: no progress bars on the console. Inside
      ``dbt build`` they are not cosmetic: Spark writes them (with carriage returns) to
      the stdout that carries dbt's JSON log lines, a line then no longer parses, and
      dagster-dbt misses that model's materialization, so every asset downstream of it
      is skipped although dbt built it.
    """
    root = spark_dir(home)
    return {
        "spark.sql.warehouse.dir": str(root / "spark-warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": os.environ.get("TRIANGULATE_SPARK_PARTITIONS", "4"),
        "spark.sql.ansi.enabled": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def spark_master() -> str:
    """Where Spark runs: ``TRIANGULATE_SPARK_MASTER``, default ``local[*]`` (this machine,
    every core); a cluster sets its own master."""
    return os.environ.get("TRIANGULATE_SPARK_MASTER", "local[*]")
