"""The journey windows: one owner, the dbt vars of ``dbt_project/dbt_project.yml``.

``journey_lookback_days``, ``click_window_days`` and ``view_window_days`` decide which
touches belong to an order's journey. dbt applies all three, once, in
``marts.fct_journey_touches`` (which ``marts.fct_conversion_journeys`` aggregates and MTA
reads). MTA needs the lookback once more: a person's touches that belong to no order
form non-converting journeys (the Markov nulls), a new one after a silence longer than
the lookback. It reads the value from here at run time instead of keeping a copy, so the
marts' paths and MTA's journeys cannot drift apart. A ``--vars`` override on a dbt
command line does not reach this reader: change the file (the pipeline's ``dbt build``
passes none).
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from triangulate.paths import DBT_PROJECT_DIR

PROJECT_FILE = DBT_PROJECT_DIR / "dbt_project.yml"
JOURNEY_VARS = ("journey_lookback_days", "click_window_days", "view_window_days")
"""The dbt vars that set the journey windows, in days."""


def journey_windows(path: Path | None = None) -> dict[str, float]:
    """The journey windows in days, as dbt_project.yml sets them (default file:
    :data:`PROJECT_FILE`); raises ``ValueError`` naming the file when one is missing or
    not a positive number."""
    path = Path(path or PROJECT_FILE)
    variables = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("vars") or {}
    windows = {}
    for name in JOURNEY_VARS:
        value = variables.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{path}: vars.{name} must be a number of days, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{path}: vars.{name} must be positive, got {value!r}")
        windows[name] = float(value)
    return windows


def journey_lookback_days(path: Path | None = None) -> float:
    """The dbt var ``journey_lookback_days``: how far before an order its journey reaches,
    and the silence that splits non-converting journeys."""
    return journey_windows(path)["journey_lookback_days"]
