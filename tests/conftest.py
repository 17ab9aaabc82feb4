"""Shared fixtures: one small simulated world per test session (the fixture every test
of the pipeline is checked against), and a temporary TRIANGULATE_HOME per test."""

from __future__ import annotations

import shutil
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
