"""Bayesian media mix model on pymc-marketing 1.3 (issue 8). Pure Python, no dagster.

Entry points: ``load_config`` (YAML), ``run_mmm`` (fit + gate + tables + saved model),
``publishable_tables`` (tables only when the gate passed, else ``GateFailed``),
``load_fitted`` (a saved run), ``add_lift_tests`` (experiment calibration hook).
Modules are imported lazily so ``import dagster_project.mmm`` does not load pymc.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_config": "dagster_project.mmm.config",
    "ConfigError": "dagster_project.mmm.config",
    "MMMConfig": "dagster_project.mmm.config",
    "run_mmm": "dagster_project.mmm.run",
    "publishable_tables": "dagster_project.mmm.run",
    "output_tables": "dagster_project.mmm.run",
    "MMMRun": "dagster_project.mmm.run",
    "GateFailed": "dagster_project.mmm.diagnostics",
    "GateResult": "dagster_project.mmm.diagnostics",
    "prepare_weekly": "dagster_project.mmm.model",
    "fit_mmm": "dagster_project.mmm.model",
    "add_lift_tests": "dagster_project.mmm.model",
    "save_fitted": "dagster_project.mmm.model",
    "load_fitted": "dagster_project.mmm.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dagster_project.mmm' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
