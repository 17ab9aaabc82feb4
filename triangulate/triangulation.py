"""Reconcile MTA, MMM and experiments per channel, and decide: ``measurement.triangulation``.

Three views of a channel's return on ad spend (revenue per unit of spend):

* ``mta_roas``: MTA-credited revenue / spend (click-based, bottom-up);
* ``mmm_roas`` (average) and ``mmm_mroas`` (marginal: revenue of the next unit of spend);
* ``experiment_iroas``: incremental revenue / spend change of the latest geo test.

The decision compares them with a ``target_roas`` (e.g. 1.0 = break-even on revenue):

* the *causal* ROAS is the experiment's iROAS where the channel was tested (an experiment
  overrides the MMM: it is the causal ground truth the MMM is calibrated towards), else
  the MMM's marginal ROAS (else its average ROAS);
* the MTA figure is the MTA ROAS, re-weighted by the experiment-based calibration factor
  where one exists (so a tested channel's known MTA blind spot does not count against it).

Rules, first match wins:

1. ``scale``: causal ROAS >= target and MTA >= ``mta_share`` (70 %) of target, or the
   channel was tested and its iROAS >= target (the experiment settles a weak MTA);
2. ``shift_budget_away``: causal ROAS < target and MTA < target;
3. ``test`` (untested channels): the causal ROAS is positive but MTA is weak (< 70 % of
   target), or MTA and MMM ROAS disagree by more than ``disagreement_factor``; the reason
   proposes a geo experiment design;
4. ``hold`` otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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
"""Contract columns of ``measurement.triangulation`` (docs/contracts.md §5, plus ``mmm_mroas``)."""

EXTRA_COLUMNS = (
    "causal_roas",
    "causal_source",
    "mta_roas_used",
    "mta_credit_gap",
    "flag",
    "target_roas",
)

DECISIONS = ("scale", "shift_budget_away", "test", "hold")


def _finite(x: object) -> bool:
    try:
        return x is not None and math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _fmt(x: float) -> str:
    return f"{x:.2f}" if _finite(x) else "n/a"


def roas_disagreement(a: float, b: float) -> float:
    """How many times larger the larger ROAS is: ``max/min`` for positive values.

    Infinite when one is positive and the other is not; NaN when either is missing.
    """
    if not (_finite(a) and _finite(b)):
        return float("nan")
    if a > 0 and b > 0:
        return max(a, b) / min(a, b)
    if a > 0 or b > 0:
        return float("inf")
    return 1.0


def decide_channel(
    channel: str,
    *,
    mta_roas: float,
    mmm_roas: float,
    mmm_mroas: float,
    experiment_iroas: float = float("nan"),
    mta_calibration_factor: float = float("nan"),
    calibration_source: str = "",
    target_roas: float = 1.0,
    mta_share: float = 0.7,
    disagreement_factor: float = 2.0,
) -> dict:
    """One row of the triangulation table (rules in the module docstring)."""
    tested = _finite(experiment_iroas)
    if tested:
        causal, source, causal_name = experiment_iroas, "experiment", "experiment iROAS"
    elif _finite(mmm_mroas):
        causal, source, causal_name = mmm_mroas, "mmm_mroas", "MMM marginal ROAS"
    else:
        causal, source, causal_name = mmm_roas, "mmm_roas", "MMM ROAS"
    calibrated = tested and calibration_source == "experiment" and _finite(mta_calibration_factor)
    mta_used = mta_roas * mta_calibration_factor if calibrated else mta_roas
    mta_name = "calibrated MTA ROAS" if calibrated else "MTA ROAS"
    floor = mta_share * target_roas
    if _finite(causal) and _finite(mta_roas) and mta_roas > 0:
        gap = causal / mta_roas
    elif _finite(causal) and causal > 0 and _finite(mta_roas) and mta_roas == 0:
        gap = float("inf")  # a channel that works but click tracking never credits (tv, podcast)
    else:
        gap = float("nan")
    disagreement = roas_disagreement(mta_roas, mmm_roas)
    c, m, t = _fmt(causal), _fmt(mta_used), _fmt(target_roas)

    if not _finite(causal) or not _finite(mta_used):
        decision = "hold"
        reason = (
            f"Not enough evidence: {causal_name} is {c} and {mta_name} is {m}; "
            "hold spend until both are measured."
        )
    elif causal >= target_roas and (mta_used >= floor or tested):
        decision = "scale"
        if mta_used >= floor:
            reason = (
                f"{causal_name} {c} is above the {t} target and {mta_name} {m} is at least "
                f"{mta_share:.0%} of target ({_fmt(floor)}): scale spend."
            )
        else:
            reason = (
                f"Experiment iROAS {c} is above the {t} target; {mta_name} {m} is below "
                f"{mta_share:.0%} of target ({_fmt(floor)}), so MTA under-credits this "
                f"channel by {_fmt(gap)}x: scale spend and re-weight MTA."
            )
    elif causal < target_roas and mta_used < target_roas:
        decision = "shift_budget_away"
        reason = (
            f"Both {causal_name} {c} and {mta_name} {m} are below the {t} target: shift "
            "budget to channels above target."
        )
    elif not tested and causal > 0 and mta_used < floor:
        decision = "test"
        reason = (
            f"{causal_name} {c} is positive but {mta_name} {m} is below {mta_share:.0%} of "
            f"the {t} target ({_fmt(floor)}): propose a geo holdout for {channel} (run "
            "`triangulate geo design` to pick geos and length) before moving budget."
        )
    elif not tested and _finite(disagreement) and disagreement > disagreement_factor:
        decision = "test"
        reason = (
            f"MTA ROAS {_fmt(mta_roas)} and MMM ROAS {_fmt(mmm_roas)} disagree by "
            f"{_fmt(disagreement)}x (more than {_fmt(disagreement_factor)}x): propose a geo "
            f"holdout for {channel} (run `triangulate geo design`) to settle it."
        )
    else:
        decision = "hold"
        reason = (
            f"{causal_name} {c} and {mta_name} {m} against the {t} target give no clear "
            "signal to scale or cut: hold spend."
        )

    if not math.isnan(gap) and gap >= disagreement_factor:
        flag = "mta_under_credits"
    elif _finite(gap) and gap > 0 and gap <= 1 / disagreement_factor:
        flag = "mta_over_credits"
    else:
        flag = ""
    return {
        "channel": channel,
        "mta_roas": mta_roas,
        "mmm_roas": mmm_roas,
        "mmm_mroas": mmm_mroas,
        "experiment_iroas": experiment_iroas,
        "mta_calibration_factor": mta_calibration_factor,
        "decision": decision,
        "reason": reason,
        "causal_roas": causal,
        "causal_source": source,
        "mta_roas_used": mta_used,
        "mta_credit_gap": gap,
        "flag": flag,
        "target_roas": target_roas,
    }


def triangulate(
    inputs: pd.DataFrame,
    *,
    target_roas: float = 1.0,
    mta_share: float = 0.7,
    disagreement_factor: float = 2.0,
) -> pd.DataFrame:
    """The ``measurement.triangulation`` table from per-channel inputs.

    ``inputs`` columns: ``channel, mta_roas, mmm_roas, mmm_mroas`` and optionally
    ``experiment_iroas``, ``mta_calibration_factor``, ``calibration_source``
    (``experiment`` or ``mmm``), as :func:`triangulation_inputs` builds them.
    """
    if target_roas <= 0:
        raise ValueError(f"target_roas must be positive, got {target_roas}")
    if disagreement_factor <= 1:
        raise ValueError(f"disagreement_factor must be above 1, got {disagreement_factor}")
    missing = [c for c in ("channel", "mta_roas", "mmm_roas", "mmm_mroas") if c not in inputs]
    if missing:
        raise ValueError(f"triangulation inputs: missing column(s) {', '.join(missing)}")
    rows = []
    for rec in inputs.to_dict("records"):
        rows.append(
            decide_channel(
                str(rec["channel"]),
                mta_roas=float(rec["mta_roas"]),
                mmm_roas=float(rec["mmm_roas"]),
                mmm_mroas=float(rec["mmm_mroas"]),
                experiment_iroas=float(rec.get("experiment_iroas", float("nan"))),
                mta_calibration_factor=float(rec.get("mta_calibration_factor", float("nan"))),
                calibration_source=str(rec.get("calibration_source", "") or ""),
                target_roas=target_roas,
                mta_share=mta_share,
                disagreement_factor=disagreement_factor,
            )
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
      ``method == experiment_method``.
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
        if "end" in exp:
            exp = exp.sort_values("end")
        latest = exp.groupby("channel")["iroas"].last()
        table = table.join(latest.rename("exp"), how="outer")
        table["experiment_iroas"] = table.pop("exp")
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
    return table.reset_index(names="channel")
