"""One MMM run end to end: fit, gate, output tables, saved model, budget plan.

The Dagster asset reads ``marts.mmm_weekly_input``, calls ``run_mmm`` and publishes
``publishable_tables(run)`` with ``warehouse.publish_run``; a run that fails the gate
raises ``GateFailed`` there, so nothing is published and the previous run stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from triangulate.mmm import outputs
from triangulate.mmm.config import MMMConfig
from triangulate.mmm.diagnostics import (
    GateFailed,
    GateResult,
    fit_until_converged,
    mape_holdout,
    run_gate,
)
from triangulate.mmm.model import FittedMMM, prepare_weekly, save_fitted

log = logging.getLogger(__name__)


@dataclass
class MMMRun:
    """Everything one run produced. ``tables`` is empty when the gate failed."""

    run_id: str
    fitted: FittedMMM
    gate: GateResult
    fitted_at: pd.Timestamp
    model_dir: Path | None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def diagnostics(self) -> pd.DataFrame:
        """``mmm_diagnostics`` row (``published`` = gate passed); available for failed runs too."""
        return outputs.diagnostics_frame(self.run_id, self.fitted_at, self.gate, self.gate.passed)


def run_mmm(
    weekly: pd.DataFrame,
    config: MMMConfig,
    run_id: str,
    artifacts_dir: str | Path | None = None,
    lift_tests: pd.DataFrame | None = None,
    *,
    budget: bool = True,
    source: str = "weekly data",
) -> MMMRun:
    """Fit the MMM on a wide weekly table and build every output table if the gate passes.

    - ``weekly``: one row per week (or week x geo) with the config's date, target, spend
      (``spend_<channel>`` or ``<channel>``) and control columns.
    - ``artifacts_dir``: the model is saved under ``<artifacts_dir>/mmm/<run_id>/``
      (saved whether or not the gate passes, so a failed fit can be inspected).
    - ``lift_tests``: optional experiment calibration (see ``model.add_lift_tests``).

    A fit with more divergences than the gate allows is sampled again with a higher
    ``target_accept`` (up to ``sampler.max_target_accept``), and one that has not
    converged with more draws (up to ``sampler.max_draws``;
    ``diagnostics.fit_until_converged``), before the gate judges it. The attempts are in
    ``fitted.convergence_attempts`` and the saved ``run.json``.

    Returns an ``MMMRun``; ``tables`` maps ``measurement.<table>`` to its frame and is
    filled only when the gate passed. Never raises ``GateFailed`` itself.
    """
    data = prepare_weekly(weekly, config, source)
    fitted = fit_until_converged(config, data, lift_tests)
    fitted_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
    holdout = mape_holdout(config, data, lift_tests)
    gate = run_gate(fitted, holdout)
    model_dir = None
    if artifacts_dir is not None:
        model_dir = save_fitted(fitted, Path(artifacts_dir) / "mmm" / run_id)
        log.info("saved model to %s", model_dir)
    run = MMMRun(run_id=run_id, fitted=fitted, gate=gate, fitted_at=fitted_at, model_dir=model_dir)
    if gate.passed:
        run.tables = output_tables(fitted, run_id, budget=budget)
        run.tables["measurement.mmm_diagnostics"] = run.diagnostics
    return run


def output_tables(
    fitted: FittedMMM, run_id: str, *, budget: bool = True
) -> dict[str, pd.DataFrame]:
    """The contract tables of a fitted model (no gate check: use ``publishable_tables``)."""
    tables = {
        "measurement.mmm_channel_summary": outputs.channel_summary(fitted, run_id),
        "measurement.mmm_weekly_contributions": outputs.weekly_contributions(fitted, run_id),
        "measurement.mmm_response_curves": outputs.response_curves(fitted, run_id),
    }
    if budget:
        plan, summary = outputs.budget_plan(fitted, run_id)
        tables["measurement.budget_plan"] = plan
        tables["measurement.budget_plan_summary"] = summary
    return tables


def publishable_tables(run: MMMRun) -> dict[str, pd.DataFrame]:
    """The tables to publish for ``run``; raises ``GateFailed`` (with the numbers) if it failed."""
    if not run.gate.passed:
        raise GateFailed(run.gate)
    return run.tables
