"""Shared fixtures: one small simulated world per test session (the fixture every test
of the pipeline is checked against), and a temporary TRIANGULATE_HOME per test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

SMALL_SEED = 7


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``small`` world (16 metros, 3 years) written once; tests must not modify it."""
    from triangulate.simulator import simulate_world

    out = tmp_path_factory.mktemp("small_world")
    simulate_world(out, scale="small", seed=SMALL_SEED)
    return out


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory: pytest.TempPathFactory):
    """A data directory on the local Spark warehouse (``TRIANGULATE_WAREHOUSE=spark``) for
    one test module: starting Spark costs seconds, so a module shares one session, stopped
    (its JVM gone, Derby released) when the module ends. Two shuffle partitions: still
    shuffled, fewer tasks on a small machine."""
    from triangulate.warehouse import spark_engine

    home = tmp_path_factory.mktemp("spark_home")
    patch = pytest.MonkeyPatch()
    patch.setenv("TRIANGULATE_HOME", str(home))
    patch.setenv("TRIANGULATE_WAREHOUSE", "spark")
    patch.setenv("PYSPARK_PYTHON", sys.executable)
    patch.setenv("TRIANGULATE_SPARK_PARTITIONS", "2")
    yield home
    spark_engine.stop()
    patch.undo()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory for one test, exported as TRIANGULATE_HOME."""
    monkeypatch.setenv("TRIANGULATE_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def home_with_landing(home: Path, small_world: Path) -> Path:
    """A data directory whose landing zone is a copy of the small world's."""
    shutil.copytree(small_world / "landing", home / "landing")
    shutil.copytree(small_world / "truth", home / "truth")
    return home


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Test files that hold a ``slow`` test run first (a stable sort: the rest keeps its order).

    ``make test`` runs the files on two workers (``pytest -n 2 --dist loadfile
    --no-loadscope-reorder``: a file's fixtures stay on one worker, and the workers take
    the files in this order, not largest test count first). Long files first keeps
    the end of the run to short files on both workers, instead of one long file started
    last running alone while the other worker idles.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
