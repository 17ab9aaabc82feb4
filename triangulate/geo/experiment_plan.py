"""Close the test loop: ``measurement.experiment_plan`` proposes the next geo tests.

The budget plan (:mod:`triangulate.decisions`) holds the channels whose marginal return the
data cannot place on either side of the target and names them ``test``. For each, ranked
by ``test_priority`` (budget at stake over the plan's horizon x the posterior standard
deviation of its marginal ROAS: money x ROAS units, i.e. how much a wrong call could cost),
this module designs a geo holdout on the warehouse's own zero-filled weekly revenue panel
(``marts.fct_weekly_revenue_panel``) with :func:`triangulate.geo.design.design_experiment`:
treatment geos, duration, minimum detectable effect (MDE, % and money), and the smallest
iROAS the test can tell from zero given the spend it withholds.

Spend withheld by a holdout of ``w`` weeks = the channel's current weekly spend x the
treatment geos' share of revenue (spend follows revenue to first order) x ``w``. A test
whose smallest detectable iROAS is above the top of the channel's marginal-ROAS interval
is flagged: it would most likely come back inconclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from triangulate.contracts import TABLE_COLUMNS
from triangulate.geo.design import design_experiment
from triangulate.geo.panel import to_wide

EXPERIMENT_PLAN_COLUMNS = list(TABLE_COLUMNS["measurement.experiment_plan"])


def revenue_panel(weekly_panel: pd.DataFrame, metric: str = "net_revenue") -> pd.DataFrame:
    """``marts.fct_weekly_revenue_panel`` as the long ``date, geo, value`` panel the geo
    tools read."""
    return pd.DataFrame(
        {
            "date": pd.to_datetime(weekly_panel["week_start"]),
            "geo": weekly_panel["geo"].astype(str),
            "value": weekly_panel[metric].astype(float),
        }
    )


def experiment_plan(
    plan: pd.DataFrame,
    weekly_panel: pd.DataFrame,
    *,
    weeks: Sequence[float] = (4, 8, 12),
    n_candidates: int = 8,
    history_weeks: int = 104,
    seed: int = 0,
) -> pd.DataFrame:
    """One proposed test per ``test`` channel of ``plan`` (one run of
    ``measurement.budget_plan``), best design first; empty when no channel needs one.

    ``weekly_panel``: ``marts.fct_weekly_revenue_panel`` (``week_start, geo, net_revenue``);
    the last ``history_weeks`` weeks are used (the recent market is the one to test in)."""
    tests = plan[plan["decision"] == "test"].sort_values("test_priority", ascending=False)
    if tests.empty:
        return pd.DataFrame(columns=EXPERIMENT_PLAN_COLUMNS)
    long = revenue_panel(weekly_panel)
    keep = np.sort(long["date"].unique())[-history_weeks:]
    wide = to_wide(long[long["date"].isin(keep)], source="marts.fct_weekly_revenue_panel")
    n_treated = max(2, min(len(wide.geos) // 6, len(wide.geos) - 3))
    revenue_by_geo = pd.Series(wide.values.sum(axis=0), index=list(wide.geos))
    rows = []
    for priority, (_, test) in enumerate(tests.iterrows(), start=1):
        weekly_spend = float(test["current_spend"]) / float(test["horizon_weeks"])
        design = design_experiment(
            wide, n_treated=n_treated, weeks=tuple(weeks), kind="holdout",
            n_candidates=n_candidates, seed=seed + priority,
        )  # fmt: skip
        best = design.ranking.iloc[0]
        geos = [g.strip() for g in str(best["treatment_geos"]).split(",")]
        share = float(revenue_by_geo[geos].sum() / revenue_by_geo.sum())
        withheld = weekly_spend * share * float(best["weeks"])
        min_iroas = float(best["mde_revenue"]) / withheld if withheld > 0 else float("nan")
        conclusive = bool(np.isfinite(min_iroas) and min_iroas <= float(test["mroas_hdi_high"]))
        detects = (
            f"detects {best['mde_pct']:g}% of their revenue ({best['mde_revenue']:,.0f}), i.e. an "
            f"iROAS of {min_iroas:.2f} or more"
            if np.isfinite(min_iroas)
            else "detects no simulated effect (up to 15% of their revenue) with 80% power"
        )
        reason = (
            f"{test['channel']}: marginal ROAS {test['mroas']:.2f} (94% HDI "
            f"{test['mroas_hdi_low']:.2f}-{test['mroas_hdi_high']:.2f}) straddles the target. "
            f"A {best['weeks']:g}-week holdout in {len(geos)} geos ({share:.0%} of revenue) withholds "
            f"about {withheld:,.0f} of spend and {detects}"
            + (
                "."
                if conclusive
                else ": above the channel's plausible range, so the test would most likely "
                "be inconclusive; a longer test or more geos is needed."
            )
        )
        rows.append(
            {
                "run_id": test["run_id"],
                "priority": priority,
                "channel": test["channel"],
                "kind": "holdout",
                "weeks": float(best["weeks"]),
                "treatment_geos": str(best["treatment_geos"]),
                "n_treated": int(best["n_treated"]),
                "mde_pct": float(best["mde_pct"]),
                "mde_revenue": float(best["mde_revenue"]),
                "spend_withheld": withheld,
                "min_detectable_iroas": min_iroas,
                "mroas": float(test["mroas"]),
                "mroas_hdi_low": float(test["mroas_hdi_low"]),
                "mroas_hdi_high": float(test["mroas_hdi_high"]),
                "test_priority": float(test["test_priority"]),
                "pre_r2": float(best["pre_r2"]),
                "conclusive_likely": conclusive,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=EXPERIMENT_PLAN_COLUMNS)
