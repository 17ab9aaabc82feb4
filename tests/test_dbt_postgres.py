"""Portability: the whole dbt project on a real PostgreSQL (scripts/postgres_portability.sh).

The script installs PostgreSQL from Debian's packages when missing, starts a throwaway
cluster on a free loopback port, copies the raw tables of the small world into it, runs
``dbt build --target postgres`` (full, then the incremental path) and ``dbt docs generate``.
The marts must then hold the same numbers as the DuckDB build of the same world.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests import dbt_fixtures
from tests.dbt_fixtures import ROOT, DbtWorld, world_tools

dbt_world = dbt_fixtures.dbt_world  # the session fixture, registered in this module


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dbt_build_passes_on_postgres_with_the_same_marts(dbt_world: DbtWorld, tmp_path) -> None:
    totals_file = tmp_path / "postgres_totals.json"
    env = {**os.environ, "PYTHON": sys.executable, "MART_TOTALS_OUT": str(totals_file)}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres_portability.sh"), str(dbt_world.world)],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    builds = re.findall(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)", output)
    assert len(builds) == 2, output[-3000:]
    for passed, _warn, errors, skipped in builds:
        assert int(passed) > 200 and errors == "0" and skipped == "0"
    with dbt_world.connect() as conn:
        duckdb_totals = world_tools.mart_totals(conn)
    postgres_totals = json.loads(totals_file.read_text())
    _assert_close(postgres_totals, duckdb_totals)


def _assert_close(left: dict, right: dict) -> None:
    """Equal up to one cent per aggregate (the engines may sum floats in another order)."""
    assert left.keys() == right.keys()
    for table in left:
        for a, b in zip(left[table], right[table], strict=True):
            assert abs(a - b) <= 0.011, (
                f"{table}: PostgreSQL {left[table]} != DuckDB {right[table]}"
            )
    return True
