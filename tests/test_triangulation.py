"""measurement.triangulation: every decision branch, and the inputs built from warehouse tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triangulate.triangulation import (
    TRIANGULATION_COLUMNS,
    triangulate,
    triangulation_inputs,
)

NAN = float("nan")


def _plan(**decisions: str) -> pd.DataFrame:
    """A budget plan's rows (the decision engine's output) for the given channel decisions."""
    return pd.DataFrame(
        {
            "run_id": "r1",
            "channel": list(decisions),
            "decision": list(decisions.values()),
            "reason": [f"the plan says {d}." for d in decisions.values()],
            "confidence": 0.9,
            "mroas": 1.2,
            "mroas_hdi_low": 0.8,
            "mroas_hdi_high": 1.6,
        }
    )


def _evidence(**rows: dict) -> pd.DataFrame:
    return pd.DataFrame([{"channel": c, "mmm_mroas": NAN, **values} for c, values in rows.items()])


def test_the_decision_is_the_plans_and_mta_never_changes_it():
    """MTA far above or far below the MMM: flagged, cited as evidence, decision untouched."""
    evidence = _evidence(
        brand={
            "mta_roas": 6.0,
            "mmm_roas": 0.4,
            "mta_roas_calibrated": 0.4,
            "calibration_source": "mmm",
        },
        meta={"mta_roas": 0.5, "mmm_roas": 2.5},
    )
    table = triangulate(evidence, _plan(brand="shift_budget_away", meta="scale")).set_index(
        "channel"
    )
    assert table.loc["brand", "decision"] == "shift_budget_away"
    assert table.loc["brand", "flag"] == "mta_over_credits"
    assert "never changes the decision" in table.loc["brand", "reason"]
    assert table.loc["brand", "reason"].startswith("the plan says shift_budget_away.")
    assert table.loc["meta", "decision"] == "scale"
    assert table.loc["meta", "flag"] == "mta_under_credits"
    assert table.loc["meta", "mta_credit_gap"] == pytest.approx(5.0)


def test_channels_click_tracking_cannot_see_are_not_measurable_not_zero():
    evidence = _evidence(tv={"mta_roas": 0.0, "mmm_roas": 1.7, "mta_calibration_factor": NAN})
    table = triangulate(evidence, _plan(tv="hold"), not_measurable_by_mta=["tv"])
    row = table.iloc[0]
    assert np.isnan(row["mta_roas"]) and not row["mta_measurable"]
    assert row["flag"] == "mta_not_measurable"
    assert "MTA: not measurable" in row["reason"] and "MTA ROAS" not in row["reason"]
    # the same channel when it is click tracked: 0 credit against a positive MMM is cited
    tracked = triangulate(evidence, _plan(tv="hold")).iloc[0]
    assert tracked["mta_roas"] == 0.0 and tracked["flag"] == "mta_under_credits"


def test_experiments_enter_with_their_interval():
    evidence = _evidence(
        meta={
            "mta_roas": 1.0, "mmm_roas": 2.0, "experiment_iroas": 2.4,
            "experiment_iroas_ci_low": 1.1, "experiment_iroas_ci_high": 3.9,
        }
    )  # fmt: skip
    row = triangulate(evidence, _plan(meta="scale")).iloc[0]
    assert "geo experiment iROAS 2.40 (interval 1.10-3.90)" in row["reason"]
    assert row["experiment_iroas_ci_low"] == 1.1


def test_triangulate_table_columns_and_validation():
    evidence = _evidence(
        tv={"mta_roas": 0.5, "mmm_roas": 3.0}, search={"mta_roas": 3.0, "mmm_roas": 2.5}
    )
    table = triangulate(evidence, _plan(tv="test", search="hold"))
    assert list(table.columns[: len(TRIANGULATION_COLUMNS)]) == list(TRIANGULATION_COLUMNS)
    assert list(table["decision"]) == ["test", "hold"]
    with pytest.raises(ValueError, match=r"missing column.*mmm_mroas"):
        triangulate(evidence.drop(columns="mmm_mroas"), _plan(tv="hold"))
    with pytest.raises(ValueError, match=r"budget plan: missing column.*decision"):
        triangulate(evidence, _plan(tv="hold").drop(columns="decision"))
    # a channel with evidence but no place in the plan is held, and says why
    extra = triangulate(evidence, _plan(tv="scale")).set_index("channel")
    assert extra.loc["search", "decision"] == "hold"
    assert "Not in the budget plan" in extra.loc["search", "reason"]


def test_inputs_from_warehouse_tables():
    weeks = pd.date_range("2026-01-05", periods=4, freq="W-MON")
    credit = pd.DataFrame(
        {
            "model": ["markov"] * 8 + ["last_click"] * 8,
            "week_start": list(weeks) * 4,
            "channel": (["tv"] * 4 + ["search"] * 4) * 2,
            "conversions": 1.0,
            "revenue": [100.0] * 4 + [900.0] * 4 + [0.0] * 4 + [1000.0] * 4,
        }
    )
    spend = pd.DataFrame(
        {
            "week_start": list(weeks) * 2 + [weeks[0] - pd.Timedelta(days=7)],
            "channel": ["tv"] * 4 + ["search"] * 4 + ["tv"],
            "spend": [200.0] * 8 + [10_000.0],  # the last row is outside the MTA weeks
        }
    )
    summary = pd.DataFrame(
        {
            "run_id": ["r1", "r1", "r2", "r2"],
            "channel": ["tv", "search", "tv", "search"],
            "roas": [9.0, 9.0, 2.0, 3.0],
            "mroas": [9.0, 9.0, 1.5, 2.0],
        }
    )
    results = pd.DataFrame(
        {
            "channel": ["tv", "tv", "tv"],
            "method": ["synthetic_control"] * 3,
            "iroas": [5.0, 2.5, np.nan],
            "iroas_ci_low": [4.0, 2.0, np.nan],
            "metric_kind": ["money", "money", "count"],  # the latest, on orders, has no iROAS
            "end_date": ["2025-01-01", "2026-02-01", "2026-03-01"],
        }
    )
    with pytest.raises(ValueError, match="several models"):
        triangulation_inputs(credit, spend, summary, results)
    inputs = triangulation_inputs(
        credit, spend, summary, results, mta_model="markov", experiment_calibration={"tv": 5.0}
    ).set_index("channel")
    assert inputs.loc["tv", "mta_roas"] == pytest.approx(0.5)  # 400 / 800
    assert inputs.loc["search", "mta_roas"] == pytest.approx(4.5)
    assert inputs.loc["tv", "mmm_roas"] == 2.0  # latest run r2
    assert inputs.loc["tv", "experiment_iroas"] == 2.5  # latest experiment on a money metric
    assert inputs.loc["tv", "experiment_iroas_ci_low"] == 2.0
    assert np.isnan(inputs.loc["search", "experiment_iroas"])
    assert inputs.loc["tv", "calibration_source"] == "experiment"
    assert inputs.loc["search", "mta_calibration_factor"] == pytest.approx(3.0 / 4.5)
    assert inputs.loc["search", "calibration_source"] == "mmm"
    assert inputs.loc["search", "mta_roas_calibrated"] == pytest.approx(3.0)
    table = triangulate(inputs.reset_index(), _plan(tv="scale", search="hold")).set_index("channel")
    # tv: MMM ROAS 2.0 against click-based MTA 0.5: under-credited, decision the plan's
    assert table.loc["tv", "decision"] == "scale"
    assert table.loc["tv", "flag"] == "mta_under_credits"


def test_channels_without_spend_are_not_budget_lines_and_uncredited_paid_ones_get_zero():
    credit = pd.DataFrame(
        {
            "model": "last_touch",
            "week_start": pd.Timestamp("2025-01-06"),
            "channel": ["direct", "meta"],
            "revenue": [50.0, 30.0],
        }
    )
    spend = pd.DataFrame(
        {"week_start": pd.Timestamp("2025-01-06"), "channel": ["meta", "tv"], "spend": [10.0, 20.0]}
    )
    summary = pd.DataFrame(
        {"run_id": "r1", "channel": ["meta", "tv"], "roas": [2.0, 1.5], "mroas": [1.0, 0.8]}
    )
    inputs = triangulation_inputs(credit, spend, summary).set_index("channel")
    assert "direct" not in inputs.index
    assert inputs.loc["tv", "mta_roas"] == 0.0
    assert inputs.loc["meta", "mta_roas"] == pytest.approx(3.0)
