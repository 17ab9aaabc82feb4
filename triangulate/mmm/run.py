"""One MMM run end to end: fit, gate, output tables, saved model, budget plan.

The Dagster asset reads ``marts.mmm_weekly_input``, calls ``run_mmm`` and publishes
``publishable_tables(run)`` with ``warehouse.publish_run``; a run that fails the gate
raises ``GateFailed`` there, so nothing is published and the previous run stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from triangulate.mmm import outputs, refresh
from triangulate.mmm.config import MMMConfig
from triangulate.mmm.diagnostics import (
    GateFailed,
    GateResult,
    fit_until_converged,
    mape_holdout,
    run_gate,
)
from triangulate.mmm.model import FittedMMM, Progress, prepare_weekly, save_fitted

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
    previous_run_id: str | None = None
    """The published run this one refreshes (issue 25), None for a first run."""
    start: str = ""
    """How the fit started: ``warm start from run ...`` or ``cold start...: why``."""

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
    progress: Progress | None = None,
    previous_run_id: str | None = None,
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

    ``progress(done, total, elapsed_s)``: called while each of those fits (retries and the
    holdout refit included) samples, at most every few seconds and once at its end
    (``model.Progress``; ``progress_printer`` makes one that prints ``progress_line``).

    ``previous_run_id``: the published run this one refreshes (the weekly refit, issue 25;
    its model saved under ``<artifacts_dir>/mmm/<previous_run_id>/``). When the model and
    the data's earlier weeks are the same, the fits start warm from its posterior, with
    ``sampler.warm_tune`` tuning steps and ``sampler.warm_draws`` draws
    (``refresh.plan_warm_start``; ``run.start`` says how it started and why), and a run
    that passes the gate also gets ``measurement.mmm_roas_change``, the week-over-week
    ROAS change against it (whether warm or cold). Each run saves its ROAS draws
    (``refresh.ROAS_DRAWS_FILE``) for the next one.

    Returns an ``MMMRun``; ``tables`` maps ``measurement.<table>`` to its frame and is
    filled only when the gate passed. Never raises ``GateFailed`` itself.
    """
    data = prepare_weekly(weekly, config, source)
    previous_dir = (
        Path(artifacts_dir) / "mmm" / previous_run_id
        if artifacts_dir is not None and previous_run_id is not None
        else None
    )
    warm, start = refresh.plan_warm_start(config, data, previous_dir, previous_run_id)
    fit_config = refresh.warm_config(config, warm)
    with refresh.warm_started(warm):
        fitted = fit_until_converged(fit_config, data, lift_tests, progress)
        fitted_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
        holdout = mape_holdout(fit_config, data, lift_tests, progress)
    gate = run_gate(fitted, holdout)
    model_dir = None
    if artifacts_dir is not None:
        model_dir = save_fitted(fitted, Path(artifacts_dir) / "mmm" / run_id)
        log.info("saved model to %s", model_dir)
    run = MMMRun(
        run_id=run_id,
        fitted=fitted,
        gate=gate,
        fitted_at=fitted_at,
        model_dir=model_dir,
        previous_run_id=previous_run_id,
        start=start,
    )
    if gate.passed:
        run.tables = output_tables(fitted, run_id, budget=budget)
        run.tables["measurement.mmm_diagnostics"] = run.diagnostics
        draws = refresh.roas_draws(fitted)
        if model_dir is not None:
            refresh.save_roas_draws(draws, model_dir)
        previous_draws = refresh.load_roas_draws(previous_dir) if previous_dir is not None else None
        if previous_draws is not None:
            change = refresh.roas_change(run_id, str(previous_run_id), draws, previous_draws)
            run.tables[refresh.ROAS_CHANGE_TABLE] = change
        elif previous_run_id is not None:
            log.info("no ROAS change table: run %s has no saved model", previous_run_id)
    return run


def _duration(seconds: float) -> str:
    """``42s``, ``1m10s``, ``1h02m05s`` (whole seconds, rounded)."""
    hours, rest = divmod(max(0, round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(done: int, total: int, elapsed: float) -> str:
    """``sampling: 2,400/12,000 draws (20%), 1m10s elapsed, ETA 4m40s``.

    Draws are over all chains, tuning included; the percentage is rounded down; the ETA
    assumes the remaining draws go at the pace so far: ``elapsed * (total - done) / done``
    (``unknown`` before the first draw).
    """
    percent = 100 * done // total if total > 0 else 0
    eta = _duration(elapsed * (total - done) / done) if done > 0 else "unknown"
    return (
        f"sampling: {done:,}/{total:,} draws ({percent}%), {_duration(elapsed)} elapsed, ETA {eta}"
    )


def progress_printer(write: Callable[[str], object], every_s: float = 15.0) -> Progress:
    """A ``progress`` hook for ``run_mmm`` that passes ``progress_line`` to ``write`` (a
    logger's ``info``, a print to stderr) at most every ``every_s`` seconds, and always
    the line of a finished sampling (``done == total``)."""
    last = -float("inf")

    def report(done: int, total: int, elapsed: float) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last < every_s:
            return
        last = now
        write(progress_line(done, total, elapsed))

    return report


def output_tables(
    fitted: FittedMMM, run_id: str, *, budget: bool = True
) -> dict[str, pd.DataFrame]:
    """The contract tables of a fitted model (no gate check: use ``publishable_tables``);
    ``measurement.mmm_geo_channel_summary`` for the geo model only."""
    tables = {
        "measurement.mmm_channel_summary": outputs.channel_summary(fitted, run_id),
        "measurement.mmm_weekly_contributions": outputs.weekly_contributions(fitted, run_id),
        "measurement.mmm_response_curves": outputs.response_curves(fitted, run_id),
    }
    if fitted.data.geo:  # the geo model's results per geo (issue 25); no table for the national
        tables["measurement.mmm_geo_channel_summary"] = outputs.geo_channel_summary(fitted, run_id)
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
