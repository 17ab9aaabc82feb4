"""Portability: the whole dbt project on the local Spark warehouse (dbt-spark ``session``).

- The ``spark`` output of dbt_project/profiles.yml must start Spark with exactly the
  settings of :func:`triangulate.warehouse.spark_settings.spark_conf`, or dbt would open
  another (empty) catalog than the pipeline's Python steps: rendered and compared here
  (fast, no Spark).
- The slow test copies the small world's ``raw.*`` tables into Spark, runs ``dbt build
  --target spark`` (full, then the incremental path with the held-back last day) and
  compares the marts with the DuckDB build of the same world (scripts/spark_portability.py).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests import dbt_fixtures
from tests.dbt_fixtures import ROOT, DbtWorld, world_tools

dbt_world = dbt_fixtures.dbt_world  # the session fixture, registered in this module

PROFILES = ROOT / "dbt_project" / "profiles.yml"


def _rendered_spark_output(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> dict:
    """The profile's ``spark`` output as dbt renders it (dbt's own env_var) under ``env``."""
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    set_invocation_context(dict(os.environ))  # what dbt's env_var reads
    output = yaml.safe_load(PROFILES.read_text())["triangulate"]["outputs"]["spark"]
    return ProfileRenderer({}).render_data(output)


@pytest.mark.parametrize("partitions", [None, "2"])
def test_spark_profile_uses_the_warehouse_spark_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, partitions: str | None
) -> None:
    from triangulate.warehouse.spark_settings import spark_conf

    home = tmp_path / "home"
    env = {"TRIANGULATE_HOME": str(home), "TRIANGULATE_SPARK_PARTITIONS": partitions}
    output = _rendered_spark_output(monkeypatch, env)
    assert output["type"] == "spark" and output["method"] == "session"
    params = {k: str(v) for k, v in output["server_side_parameters"].items()}
    assert params == spark_conf(home)


def test_spark_profile_default_home_is_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TRIANGULATE_HOME both sides fall back to ./data (triangulate.paths)."""
    from triangulate.warehouse.spark_settings import spark_conf

    output = _rendered_spark_output(
        monkeypatch, {"TRIANGULATE_HOME": None, "TRIANGULATE_SPARK_PARTITIONS": None}
    )
    params = {k: str(v) for k, v in output["server_side_parameters"].items()}
    assert params == spark_conf(Path("data"))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_dbt_build_passes_on_spark_with_the_same_marts(dbt_world: DbtWorld, tmp_path) -> None:
    home = tmp_path / "spark_home"
    out = tmp_path / "spark_result.json"
    env = {**os.environ}
    env.pop("TRIANGULATE_SPARK_PARTITIONS", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "spark_portability.py"), "check",
         "--warehouse", str(dbt_world.warehouse), "--home", str(home), "--out", str(out)],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    spark = json.loads(out.read_text())

    import spark_portability

    with dbt_world.connect() as conn:
        duckdb_totals = world_tools.mart_totals(conn)
        cur = conn.execute("select * from marts.mmm_weekly_input")
        duckdb_columns = [d[0] for d in cur.description]
        duckdb_types = [str(d[1]) for d in cur.description]
        duckdb_mmm = spark_portability.mmm_rows(cur.fetchall(), duckdb_columns)
    # row counts, money sums (to the cent) and distinct counts: equal
    assert spark["totals"] == duckdb_totals
    # marts.mmm_weekly_input row by row. Exact but for two engine differences in floating
    # point (dbt_project/README.md, Spark): a DOUBLE control column is an average that
    # DuckDB computes in double and Spark in decimal(32, 14) (relative 1e-12); and money
    # that an order got by casting a double product (amount x FX rate) to decimal(28, 6)
    # can round the other way on the other engine when the product sits on a half-micro
    # (DuckDB scales in binary floating point, Spark rounds the double's decimal text
    # half-up): 0.000001 in a few week-geo cells, never in the sums above.
    assert spark["mmm_columns"] == duckdb_columns
    assert len(spark["mmm_rows"]) == len(duckdb_mmm) > 0
    money_rows_off = 0
    for spark_row, duckdb_row in zip(spark["mmm_rows"], duckdb_mmm, strict=True):
        assert spark_row[:2] == duckdb_row[:2]  # week_start, geo: the same cell
        off = False
        for name, kind, a, b in zip(
            duckdb_columns, duckdb_types, spark_row, duckdb_row, strict=True
        ):
            if a == b:
                continue
            assert a is not None and b is not None, (name, spark_row, duckdb_row)
            if kind == "DOUBLE":
                assert math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12), (name, a, b)
            elif kind.startswith("DECIMAL"):
                assert abs(Decimal(a) - Decimal(b)) <= Decimal("0.000001"), (name, a, b)
                off = True
            else:
                raise AssertionError(f"{name}: Spark {a} != DuckDB {b} in {duckdb_row[:2]}")
        money_rows_off += off
    assert money_rows_off <= len(duckdb_mmm) // 100, money_rows_off
    print(f"Spark dbt builds: {spark['timings']}; mmm rows off by 0.000001: {money_rows_off}")
