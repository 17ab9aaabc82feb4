"""Fixtures for the dbt tests: the small simulated world built through dbt once per session.

The build follows the production path and exercises the incremental models: the last
simulated day of the event-scale streams (Segment events, Stripe deliveries) is held back,
everything else is loaded and built from scratch, then the held-back day arrives as new
landing files, is loaded, and ``dbt build`` runs again incrementally. Tests then compare
the marts with the simulator's truth, which covers the whole world.

Register the fixture in a test module with ``dbt_world = dbt_fixtures.dbt_world``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import dbt_world as world_tools  # noqa: E402


@dataclass(frozen=True)
class DbtWorld:
    """A simulated world built through dbt: ``home/warehouse.duckdb`` holds raw and the marts."""

    world: Path  # the simulator's output (landing/, truth/): read-only
    home: Path  # TRIANGULATE_HOME of the build
    held_back: dict[str, int]  # records of the last day held back per landing folder
    tail_rows: dict[str, int]  # raw rows loaded when the held-back day arrived

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    def connect(self):
        import duckdb

        return duckdb.connect(str(self.warehouse), read_only=True)


_BUILT: dict[Path, DbtWorld] = {}
"""One build per simulated world per session, shared by every module that registers the fixture."""


@pytest.fixture(scope="session")
def dbt_world(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtWorld:
    if small_world not in _BUILT:
        _BUILT[small_world] = _build(small_world, tmp_path_factory.mktemp("dbt_world"))
    return _BUILT[small_world]


def _build(small_world: Path, root: Path) -> DbtWorld:
    home = root / "home"
    world_tools.link_landing(small_world / "landing", home / "landing")
    held = root / "held"
    held_back = world_tools.hold_back_tail(
        home / "landing", held, world_tools.last_simulated_day(small_world)
    )
    world_tools.load_raw(home)
    world_tools.run_dbt(["build"], home)  # first build: every model from scratch
    world_tools.add_held_back(home / "landing", held)
    tail_rows = world_tools.load_raw(home)
    world_tools.run_dbt(["build"], home)  # incremental models take only the new day
    return DbtWorld(world=small_world, home=home, held_back=held_back, tail_rows=tail_rows)
