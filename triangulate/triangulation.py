"""Reconcile MTA, MMM and experiments per channel: ``measurement.triangulation``.

Three views of a channel's return on ad spend (revenue per unit of spend):

* ``mta_roas``: MTA-credited revenue / spend (click-based, bottom-up); ``mta_roas_calibrated``
  re-weights it by the channel's calibration factor (experiment where tested, else MMM);
* ``mmm_roas`` (average) and ``mmm_mroas`` (marginal, with its 94 % HDI) of the published run;
* ``experiment_iroas`` with its interval: incremental revenue / spend change of the latest
  geo test (it enters the decision through the calibrated MMM, as a lift test with its
  standard error, not as a point).

The decision is not made here. It is the budget plan's (:mod:`triangulate.decisions`): one
rule on the MMM's posterior draws decides the plan, and a channel's decision is the
direction of its planned change, so this table and ``measurement.budget_plan`` cannot
disagree. Causal evidence outranks clicks: MTA never changes a decision; it is shown beside
it, calibrated, and where it disagrees with the MMM by more than ``disagreement_factor`` the
channel is flagged (``mta_over_credits`` / ``mta_under_credits``). Channels click tracking
cannot see (tv, podcast, offline) have no MTA figure (``mta_measurable`` false, flag
``mta_not_measurable``), never a 0 cited as evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from triangulate.geo.panel import MetricLabels

TRIANGULATION_COLUMNS = (
    "channel",
    "mta_roas",
    "mmm_roas",
    "mmm_mroas",
    "experiment_iroas",
    "mta_calibration_factor",
    "decision",
    "reason",
)
"""Contract columns of ``measurement.triangulation`` (docs/contracts.md §5)."""

EXTRA_COLUMNS = (
    "mta_measurable",
    "mta_roas_calibrated",
    "calibration_source",
    "mmm_mroas_hdi_low",
    "mmm_mroas_hdi_high",
    "p_mroas_above_target",
    "experiment_iroas_ci_low",
    "experiment_iroas_ci_high",
    "confidence",
    "spend_change_pct",
    "current_spend",
    "recommended_spend",
    "mta_credit_gap",
    "flag",
    "target_roas",
    "run_id",
    "plan",
    "data_end",
    "plan_start",
    "plan_end",
    "computed_at",
    "staleness_warning",
)


def _finite(x: object) -> bool:
    try:
        return x is not None and math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _fmt(x: float) -> str:
    return f"{x:.2f}" if _finite(x) else "n/a"


def _evidence(row: dict, measurable: bool, disagreement_factor: float) -> tuple[str, str, float]:
    """(flag, evidence sentence, MTA credit gap = MMM ROAS / MTA ROAS) of one channel."""
    parts = []
    if _finite(row.get("experiment_iroas")):
        ci = ""
        if _finite(row.get("experiment_iroas_ci_low")) and _finite(
            row.get("experiment_iroas_ci_high")
        ):
            ci = f" (interval {_fmt(row['experiment_iroas_ci_low'])}-{_fmt(row['experiment_iroas_ci_high'])})"
        parts.append(
            f"geo experiment iROAS {_fmt(row['experiment_iroas'])}{ci}, in the calibrated MMM"
        )
    if not measurable:
        return (
            "mta_not_measurable",
            "; ".join([*parts, "MTA: not measurable (click tracking cannot see this channel)"]),
            float("nan"),
        )
    mta, mmm = row.get("mta_roas", float("nan")), row.get("mmm_roas", float("nan"))
    gap = mmm / mta if _finite(mta) and mta > 0 and _finite(mmm) else float("nan")
    flag = ""
    if _finite(gap) and gap >= disagreement_factor:
        flag = "mta_under_credits"
    elif _finite(gap) and 0 < gap <= 1 / disagreement_factor:
        flag = "mta_over_credits"
    elif _finite(mta) and mta == 0 and _finite(mmm) and mmm > 0:
        flag, gap = "mta_under_credits", float("inf")
    source = row.get("calibration_source") or "no"
    mta_text = (
        f"MTA ROAS {_fmt(mta)} ({_fmt(row.get('mta_roas_calibrated'))} calibrated by {source})"
    )
    if flag:
        mta_text += f", {flag.replace('_', ' ')} against the MMM ROAS {_fmt(mmm)}"
    parts.append(mta_text + ": evidence only, it never changes the decision")
    return flag, "; ".join(parts), gap


def triangulate(
    inputs: pd.DataFrame,
    plan: pd.DataFrame,
    *,
    not_measurable_by_mta: Iterable[str] = (),
    disagreement_factor: float = 2.0,
) -> pd.DataFrame:
    """The ``measurement.triangulation`` table: the evidence per channel beside the plan's
    decision.

    ``inputs``: :func:`triangulation_inputs` (``channel, mta_roas, mmm_roas, mmm_mroas``,
    optional experiment and calibration columns). ``plan``: one run's
    ``measurement.budget_plan`` rows (``channel, decision, reason, confidence, ...``); every
    paid channel of the plan gets a row, with the plan's decision. A channel in the inputs
    but not in the plan (no spend in the MMM) is ``hold`` with that said.
    ``not_measurable_by_mta``: channels click tracking cannot see.
    """
    if disagreement_factor <= 1:
        raise ValueError(f"disagreement_factor must be above 1, got {disagreement_factor}")
    missing = [c for c in ("channel", "mta_roas", "mmm_roas", "mmm_mroas") if c not in inputs]
    if missing:
        raise ValueError(f"triangulation inputs: missing column(s) {', '.join(missing)}")
    missing = [c for c in ("channel", "decision", "reason") if c not in plan]
    if missing:
        raise ValueError(f"budget plan: missing column(s) {', '.join(missing)}")
    blind = set(not_measurable_by_mta)
    by_channel = {str(r["channel"]): r for r in inputs.to_dict("records")}
    planned = {str(r["channel"]): r for r in plan.to_dict("records")}
    rows = []
    for channel in list(planned) + [c for c in by_channel if c not in planned]:
        ev = dict(by_channel.get(channel, {"channel": channel}))
        pl = planned.get(channel, {})
        measurable = channel not in blind
        if not measurable:
            ev["mta_roas"] = float("nan")
            ev["mta_roas_calibrated"] = float("nan")
            ev["mta_calibration_factor"] = float("nan")
            ev["calibration_source"] = ""
        flag, evidence, gap = _evidence(ev, measurable, disagreement_factor)
        if pl:
            decision, reason = pl["decision"], f"{pl['reason']} Evidence: {evidence}."
        else:
            decision = "hold"
            reason = f"Not in the budget plan (no spend in the MMM): hold. Evidence: {evidence}."
        rows.append(
            {
                "channel": channel,
                "mta_roas": ev.get("mta_roas", float("nan")),
                "mmm_roas": ev.get("mmm_roas", float("nan")),
                "mmm_mroas": pl.get("mroas", ev.get("mmm_mroas", float("nan"))),
                "experiment_iroas": ev.get("experiment_iroas", float("nan")),
                "mta_calibration_factor": ev.get("mta_calibration_factor", float("nan")),
                "decision": decision,
                "reason": reason,
                "mta_measurable": measurable,
                "mta_roas_calibrated": ev.get("mta_roas_calibrated", float("nan")),
                "calibration_source": ev.get("calibration_source", "") or "",
                "mmm_mroas_hdi_low": pl.get("mroas_hdi_low", float("nan")),
                "mmm_mroas_hdi_high": pl.get("mroas_hdi_high", float("nan")),
                "p_mroas_above_target": pl.get("p_mroas_above_target", float("nan")),
                "experiment_iroas_ci_low": ev.get("experiment_iroas_ci_low", float("nan")),
                "experiment_iroas_ci_high": ev.get("experiment_iroas_ci_high", float("nan")),
                "confidence": pl.get("confidence", float("nan")),
                "spend_change_pct": pl.get("spend_change_pct", 0.0),
                "current_spend": pl.get("current_spend", float("nan")),
                "recommended_spend": pl.get("recommended_spend", float("nan")),
                "mta_credit_gap": gap,
                "flag": flag,
                "target_roas": pl.get("target_roas", float("nan")),
                "run_id": pl.get("run_id", ""),
                "plan": pl.get("plan", ""),
                "data_end": pl.get("data_end"),
                "plan_start": pl.get("plan_start"),
                "plan_end": pl.get("plan_end"),
                "computed_at": pl.get("computed_at"),
                "staleness_warning": pl.get("staleness_warning", ""),
            }
        )
    return pd.DataFrame(rows, columns=list(TRIANGULATION_COLUMNS + EXTRA_COLUMNS))


def triangulation_inputs(
    mta_channel_credit: pd.DataFrame,
    channel_spend: pd.DataFrame,
    mmm_channel_summary: pd.DataFrame,
    geo_experiment_results: pd.DataFrame | None = None,
    *,
    mta_model: str | None = None,
    mmm_run_id: str | None = None,
    experiment_method: str = "synthetic_control",
    experiment_calibration: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per-channel inputs for :func:`triangulate` from the warehouse tables (docs/contracts.md §5).

    * ``mta_roas`` = credited revenue / spend over the weeks the MTA table covers, for
      ``mta_model`` (required when the table holds several models);
      ``mta_channel_credit``: ``model, week_start, channel, revenue``;
      ``channel_spend``: ``week_start, channel, spend`` (any extra grain is summed).
    * ``mmm_roas``, ``mmm_mroas`` from ``mmm_channel_summary`` for ``mmm_run_id``
      (default: the greatest run id, i.e. the latest when ids sort by time).
    * ``experiment_iroas``: the latest experiment per channel (by ``end``) with
      ``method == experiment_method`` on a money metric (a count metric's test,
      ``metric_kind`` count, has no iROAS).
    * ``mta_calibration_factor``: from ``experiment_calibration`` (channel -> factor, e.g.
      :func:`triangulate.geo.calibration.mta_calibration_factor` on the test's geos and
      window), else MMM ROAS / MTA ROAS (MMM contribution per MTA-credited dollar);
      ``calibration_source`` says which.
    """
    credit = mta_channel_credit
    models = sorted(credit["model"].astype(str).unique()) if "model" in credit else []
    if len(models) > 1 and mta_model is None:
        raise ValueError(
            f"mta_channel_credit holds several models ({', '.join(models)}); choose one with mta_model"
        )
    if mta_model is not None:
        credit = credit[credit["model"].astype(str) == mta_model]
        if credit.empty:
            raise ValueError(f"mta_channel_credit has no rows for model {mta_model!r}")
    weeks = set(pd.to_datetime(credit["week_start"]))
    spend = channel_spend[pd.to_datetime(channel_spend["week_start"]).isin(weeks)]
    mta = (
        credit.groupby("channel")["revenue"].sum().rename("mta_revenue").to_frame()
        .join(spend.groupby("channel")["spend"].sum().rename("mta_spend"), how="outer")
    )  # fmt: skip
    # a paid channel that click tracking never credits (tv, podcast) has MTA ROAS 0, not n/a;
    # channels without spend (direct, organic, email) are not budget lines and are left out
    mta["mta_revenue"] = mta["mta_revenue"].fillna(0.0)
    mta = mta[mta["mta_spend"].fillna(0.0) > 0]
    mta["mta_roas"] = mta["mta_revenue"] / mta["mta_spend"]

    summary = mmm_channel_summary
    if "run_id" in summary and len(summary):
        run = mmm_run_id if mmm_run_id is not None else max(summary["run_id"].astype(str))
        summary = summary[summary["run_id"].astype(str) == run]
    mmm = summary.set_index("channel")[["roas", "mroas"]].rename(
        columns={"roas": "mmm_roas", "mroas": "mmm_mroas"}
    )
    table = mta[["mta_roas"]].join(mmm, how="outer")
    table["experiment_iroas"] = np.nan
    if geo_experiment_results is not None and len(geo_experiment_results):
        exp = geo_experiment_results[geo_experiment_results["method"] == experiment_method]
        if "metric_kind" in exp:
            exp = exp[MetricLabels.money_rows(exp["metric_kind"])]
        if "end_date" in exp:
            exp = exp.sort_values("end_date")
        cols = [c for c in ("iroas", "iroas_ci_low", "iroas_ci_high") if c in exp]
        latest = exp.groupby("channel")[cols].last()
        latest.columns = [f"experiment_{c}" for c in cols]
        table = table.drop(columns=["experiment_iroas"]).join(latest, how="outer")
    calibration = experiment_calibration or {}
    table["mta_calibration_factor"] = [
        calibration.get(ch, float("nan")) for ch in table.index.astype(str)
    ]
    table["calibration_source"] = np.where(
        np.isfinite(table["mta_calibration_factor"]), "experiment", "mmm"
    )
    mmm_factor = np.where(table["mta_roas"] > 0, table["mmm_roas"] / table["mta_roas"], np.nan)
    table["mta_calibration_factor"] = table["mta_calibration_factor"].fillna(
        pd.Series(mmm_factor, index=table.index)
    )
    table.loc[~np.isfinite(table["mta_calibration_factor"]), "calibration_source"] = ""
    table["mta_roas_calibrated"] = table["mta_roas"] * table["mta_calibration_factor"]
    return table.reset_index(names="channel")
