"""dbt and Python use one data directory: Python's (triangulate.paths.triangulate_home),
handed to the dbt subprocess explicitly, whatever the working directory."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from triangulate.paths import DBT_PROJECT_DIR, triangulate_home, warehouse_path


def test_dbt_builds_into_the_warehouse_python_opens_from_another_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`triangulate run` outside the repo without TRIANGULATE_HOME: Python's home is
    ./data of the working directory, and the Dagster dbt resource builds there (dbt itself
    runs in dbt_project/, where the profile's relative default would point elsewhere)."""
    from dagster_project.assets.transform import dbt_resource

    monkeypatch.delenv("TRIANGULATE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()  # what `triangulate run` creates first (ensure_home)
    assert triangulate_home() == tmp_path / "data"
    stray = DBT_PROJECT_DIR / "data" / "warehouse.duckdb"
    stray_before = stray.stat().st_mtime_ns if stray.exists() else None

    invocation = dbt_resource().cli(["seed"], raise_on_error=False)
    invocation.wait()

    assert invocation.is_successful()
    assert "TRIANGULATE_HOME" not in os.environ  # the process's environment is left as it was
    with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
        assert conn.execute("select count(*) from staging.channel_rules").fetchone()[0] > 0
    assert (stray.stat().st_mtime_ns if stray.exists() else None) == stray_before


def test_dbt_environment_passes_the_resolved_home_and_restores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.assets.transform import dbt_environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIANGULATE_HOME", "relative/home")
    with dbt_environment():
        assert os.environ["TRIANGULATE_HOME"] == str(tmp_path / "relative" / "home")
    assert os.environ["TRIANGULATE_HOME"] == "relative/home"
