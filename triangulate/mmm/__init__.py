"""Bayesian media mix model on pymc-marketing 1.3 (issue 8). Pure Python, no dagster.

Entry points: ``load_config`` (YAML), ``run_mmm`` (fit + gate + tables + saved model),
``publishable_tables`` (tables only when the gate passed, else ``GateFailed``),
``load_fitted`` (a saved run), ``add_lift_tests`` (experiment calibration hook).
Modules are imported lazily so ``import triangulate.mmm`` does not load pymc.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_config": "triangulate.mmm.config",
    "ConfigError": "triangulate.mmm.config",
    "MMMConfig": "triangulate.mmm.config",
    "run_mmm": "triangulate.mmm.run",
    "publishable_tables": "triangulate.mmm.run",
    "output_tables": "triangulate.mmm.run",
    "MMMRun": "triangulate.mmm.run",
    "GateFailed": "triangulate.mmm.diagnostics",
    "GateResult": "triangulate.mmm.diagnostics",
    "prepare_weekly": "triangulate.mmm.model",
    "fit_mmm": "triangulate.mmm.model",
    "add_lift_tests": "triangulate.mmm.model",
    "save_fitted": "triangulate.mmm.model",
    "load_fitted": "triangulate.mmm.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'triangulate.mmm' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
