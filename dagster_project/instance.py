"""The Dagster instance of a data directory: ``$TRIANGULATE_HOME/dagster`` with a
``dagster.yaml`` that gives the ``warehouse`` pool one slot (DuckDB has one writer)."""

from __future__ import annotations

from pathlib import Path

from triangulate.paths import triangulate_home


def dagster_home(home: Path | None = None) -> Path:
    """Dagster's instance directory (run history, schedules) inside the data directory."""
    return (home or triangulate_home()) / "dagster"


DAGSTER_INSTANCE_YAML = """\
# Written by Triangulate. Every warehouse-touching asset uses the pool `warehouse`;
# unconfigured pools get one slot, so DuckDB's single writer is never contended.
concurrency:
  pools:
    default_limit: 1
    granularity: op
telemetry:
  enabled: false
# The library's log messages (triangulate.*: the MMM's build, prior predictive and
# sampling with their durations) go to the run's logs in the UI and to the console.
python_logs:
  managed_python_loggers: [triangulate]
"""


def ensure_dagster_home(home: Path | None = None, folder: Path | None = None) -> Path:
    """Create the Dagster instance folder with its ``dagster.yaml`` (pool limit 1) and
    return it: ``folder`` when given (a user's ``$DAGSTER_HOME``; an existing
    ``dagster.yaml`` there is left as it is), else ``$TRIANGULATE_HOME/dagster``."""
    ours = folder is None
    folder = folder or dagster_home(home)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "dagster.yaml"
    if not config.exists() or (ours and config.read_text() != DAGSTER_INSTANCE_YAML):
        config.write_text(DAGSTER_INSTANCE_YAML)
    return folder
