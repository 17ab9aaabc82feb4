"""Portability: the whole dbt project on the local Spark warehouse (dbt-spark, ``session``).

The Spark analogue of scripts/postgres_portability.sh, used by tests/test_dbt_spark.py:

1. ``copy-raw``: copies the ``raw.*`` tables of a DuckDB warehouse into Spark tables in
   schema ``raw`` of the local Spark warehouse under ``--home`` (the Hive metastore and
   Parquet files of :func:`triangulate.warehouse.spark_settings.spark_conf`). DuckDB writes
   each table as Parquet (VARCHAR -> string, BIGINT -> bigint, TIMESTAMP WITH TIME ZONE ->
   timestamp, an instant read in the UTC session zone; JSON -> its text, a string, as the
   JSON columns are text to dbt-spark's ``json_text``) and Spark copies that into a managed
   table (not the ingest's ledgers, ``raw._*``: no model reads them, and Spark takes
   folders starting with ``_`` for hidden ones). ``--part before-tail`` copies the rows that did not come from held-back files
   (``*-tail.ndjson``, scripts/dbt_world.py ``hold_back_tail``), ``--part tail`` appends
   the rest, so the second ``dbt build`` takes the incremental path with new rows exactly
   as the DuckDB build of tests/dbt_fixtures.py did; ``--part all`` copies everything.
2. ``mart-totals``: prints :data:`dbt_world.MART_TOTALS` evaluated on Spark's marts and
   every row of ``marts.mmm_weekly_input`` (values as text: decimals exactly) as JSON.
3. ``check``: the whole thing: copy (before tail), ``dbt build --full-refresh --target
   spark``, copy (tail), ``dbt build --target spark``, mart totals.

Embedded Derby admits one JVM at a time, so every Spark step runs in its own process and
ends before dbt (which starts its own Spark) runs.

    python scripts/spark_portability.py copy-raw --warehouse FILE --home DIR [--part P]
    python scripts/spark_portability.py mart-totals --home DIR
    python scripts/spark_portability.py check --warehouse FILE --home DIR [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAIL_FILES = "%-tail.ndjson"
"""``_file`` of the rows loaded from held-back files (dbt_world.hold_back_tail)."""


def spark_session(home: Path):
    """A Spark session on the local warehouse under ``home`` (the settings dbt uses)."""
    from pyspark.sql import SparkSession

    from triangulate.warehouse.spark_settings import spark_conf, spark_master

    builder = SparkSession.builder.master(spark_master()).appName("triangulate-portability")
    for key, value in spark_conf(home).items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()


def copy_raw_to_spark(warehouse: Path, home: Path, part: str = "all") -> dict[str, int]:
    """Copy ``raw.*`` of a DuckDB warehouse into Spark schema ``raw``; rows copied per table.

    ``part``: ``all`` or ``before-tail`` replace the Spark tables; ``tail`` appends the rows
    of held-back files to them."""
    import duckdb

    src = duckdb.connect(str(warehouse), read_only=True)
    spark = spark_session(home)
    copied = {}
    try:
        spark.sql("create database if not exists raw")
        tables = [t for (t,) in src.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
        ).fetchall()]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            for table in tables:
                if table.startswith("_"):
                    continue  # the ingest's ledgers (_loaded_files, ...): no model reads them
                cols = src.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
                names = [c for c, _ in cols]
                select = ", ".join(
                    f'cast("{c}" as varchar) as "{c}"' if t == "JSON" else f'"{c}"' for c, t in cols
                )
                where = "true"
                if "_file" in names and part != "all":
                    op = "not like" if part == "before-tail" else "like"
                    where = f"coalesce(_file, '') {op} '{TAIL_FILES}'"
                elif part == "tail":
                    continue  # tables without landing lineage arrive whole with the first part
                if (
                    part == "tail"
                    and not src.execute(
                        f'select count(*) from raw."{table}" where {where}'
                    ).fetchone()[0]
                ):
                    continue  # nothing held back from this table
                path = Path(tmp) / f"t{len(copied)}.parquet"  # Spark skips names starting with _
                src.execute(
                    f"copy (select {select} from raw.\"{table}\" where {where}) to '{path}' (format parquet)"
                )
                frame = spark.read.parquet(str(path))
                copied[table] = frame.count()
                if part == "tail":
                    frame.select(*[f"`{c}`" for c in names]).write.mode("append").insertInto(
                        f"raw.`{table}`"
                    )
                else:
                    spark.sql(f"drop table if exists raw.`{table}`")
                    frame.write.format("parquet").saveAsTable(f"raw.`{table}`")
    finally:
        src.close()
        spark.stop()
    return copied


def _text(value) -> str | None:
    """A value as exact text (decimals keep their digits; dates and timestamps ISO)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 12.340000 -> 12.34, 1E+1 -> 10
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def mmm_rows(rows, columns: list[str]) -> list[list[str | None]]:
    """Rows of mmm_weekly_input as sorted lists of exact text (comparable across engines)."""
    return sorted(([_text(v) for v in row] for row in rows), key=lambda r: [x or "" for x in r])


def spark_mart_totals(home: Path) -> dict:
    """``{"totals": MART_TOTALS on Spark, "mmm_columns": [...], "mmm_rows": [...]}``."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from dbt_world import MART_TOTALS

    spark = spark_session(home)
    try:
        totals = {}
        for table, aggregates in MART_TOTALS.items():
            row = spark.sql(f"select {aggregates} from marts.{table}").collect()[0]
            totals[table] = [round(float(v), 2) for v in row]
        frame = spark.table("marts.mmm_weekly_input")
        columns = frame.columns
        rows = mmm_rows([tuple(r) for r in frame.collect()], columns)
        return {"totals": totals, "mmm_columns": columns, "mmm_rows": rows}
    finally:
        spark.stop()


def _python(*args: str) -> None:
    subprocess.run([sys.executable, __file__, *args], check=True, cwd=ROOT)


def check(warehouse: Path, home: Path) -> dict:
    """Copy raw, build twice (full, then incremental with the held-back rows), read marts."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from dbt_world import run_dbt

    timings = {}
    _python("copy-raw", "--warehouse", str(warehouse), "--home", str(home), "--part", "before-tail")
    timings["full_build_s"] = run_dbt(["build", "--full-refresh"], home, target="spark")
    print(f"==> dbt build --target spark (full): {timings['full_build_s']:.0f}s", file=sys.stderr)
    _python("copy-raw", "--warehouse", str(warehouse), "--home", str(home), "--part", "tail")
    timings["incremental_build_s"] = run_dbt(["build"], home, target="spark")
    print(
        f"==> dbt build --target spark (incremental): {timings['incremental_build_s']:.0f}s",
        file=sys.stderr,
    )
    out = Path(tempfile.mkdtemp()) / "totals.json"
    with open(out, "w") as fh:
        subprocess.run(
            [sys.executable, __file__, "mart-totals", "--home", str(home)],
            check=True, cwd=ROOT, stdout=fh,
        )  # fmt: skip
    result = json.loads(out.read_text())
    result["timings"] = timings
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("copy-raw", help="copy raw.* from a DuckDB warehouse into local Spark")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--part", choices=["all", "before-tail", "tail"], default="all")
    p = sub.add_parser("mart-totals", help="print MART_TOTALS and mmm_weekly_input of Spark")
    p.add_argument("--home", type=Path, required=True)
    p = sub.add_parser("check", help="copy raw, dbt build twice on Spark, print mart totals")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "copy-raw":
        started = time.perf_counter()
        for table, n in copy_raw_to_spark(args.warehouse, args.home, args.part).items():
            print(f"raw.{table}: {n:,} rows copied to Spark ({args.part})", file=sys.stderr)
        print(f"==> copied in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    elif args.command == "mart-totals":
        print(json.dumps(spark_mart_totals(args.home)))
    else:
        result = check(args.warehouse, args.home)
        text = json.dumps(result)
        if args.out:
            args.out.write_text(text)
        else:
            print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
