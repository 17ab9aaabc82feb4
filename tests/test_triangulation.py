"""measurement.triangulation: every decision branch, and the inputs built from warehouse tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triangulate.triangulation import (
    TRIANGULATION_COLUMNS,
    decide_channel,
    triangulate,
    triangulation_inputs,
)

NAN = float("nan")


def _decide(**kw):
    base = {"mta_roas": NAN, "mmm_roas": NAN, "mmm_mroas": NAN, "target_roas": 2.0}
    base.update(kw)
    return decide_channel("tv", **base)


def test_scale_when_mmm_marginal_above_target_and_mta_close_enough():
    row = _decide(mta_roas=1.5, mmm_roas=3.0, mmm_mroas=2.5)  # MTA 75 % of target
    assert row["decision"] == "scale"
    assert "MMM marginal ROAS 2.50 is above the 2.00 target" in row["reason"]
    assert "1.50" in row["reason"] and "(1.40)" in row["reason"]


def test_test_when_mmm_positive_but_mta_weak():
    row = _decide(mta_roas=0.5, mmm_roas=3.0, mmm_mroas=2.5)
    assert row["decision"] == "test"
    assert "propose a geo holdout for tv" in row["reason"]
    assert row["flag"] == "mta_under_credits"


def test_test_when_mta_and_mmm_disagree_by_more_than_the_factor():
    # MMM below target (so no scale), MTA well above it (so no shift): they disagree 4x
    row = _decide(mta_roas=4.0, mmm_roas=1.0, mmm_mroas=1.5)
    assert row["decision"] == "test"
    assert "disagree by 4.00x" in row["reason"]
    # the same numbers with a more tolerant user factor: hold
    assert (
        decide_channel(
            "tv",
            mta_roas=4.0,
            mmm_roas=1.0,
            mmm_mroas=1.5,
            target_roas=2.0,
            disagreement_factor=5.0,
        )["decision"]
        == "hold"
    )


def test_shift_budget_away_when_both_below_target():
    row = _decide(mta_roas=0.8, mmm_roas=1.1, mmm_mroas=0.6)
    assert row["decision"] == "shift_budget_away"
    assert "0.60" in row["reason"] and "0.80" in row["reason"]


def test_hold_when_signals_are_mixed_but_close():
    row = _decide(mta_roas=2.2, mmm_roas=1.9, mmm_mroas=1.8)
    assert row["decision"] == "hold"


def test_experiment_overrides_the_mmm():
    # the MMM says cut, the experiment says the channel pays: scale (and MTA is re-weighted)
    row = _decide(
        mta_roas=0.9, mmm_roas=1.2, mmm_mroas=1.0, experiment_iroas=2.7,
        mta_calibration_factor=3.0, calibration_source="experiment",
    )  # fmt: skip
    assert row["decision"] == "scale"
    assert row["causal_source"] == "experiment" and row["causal_roas"] == 2.7
    assert row["mta_roas_used"] == pytest.approx(2.7)
    assert "experiment iROAS 2.70" in row["reason"]


def test_tested_channel_with_weak_uncalibrated_mta_scales_instead_of_retesting():
    row = _decide(mta_roas=0.5, mmm_roas=3.0, mmm_mroas=2.5, experiment_iroas=2.4)
    assert row["decision"] == "scale"
    assert "MTA under-credits this channel by 4.80x" in row["reason"]


def test_experiment_below_target_shifts_budget_even_if_the_mmm_is_keen():
    row = _decide(mta_roas=1.0, mmm_roas=4.0, mmm_mroas=3.0, experiment_iroas=0.7)
    assert row["decision"] == "shift_budget_away"


def test_missing_evidence_holds():
    assert _decide(mta_roas=1.0)["decision"] == "hold"


def test_triangulate_table_columns_and_validation():
    inputs = pd.DataFrame(
        {
            "channel": ["tv", "search"],
            "mta_roas": [0.5, 3.0],
            "mmm_roas": [3.0, 2.5],
            "mmm_mroas": [2.5, 1.8],
        }
    )
    table = triangulate(inputs, target_roas=2.0)
    assert list(table.columns[: len(TRIANGULATION_COLUMNS)]) == list(TRIANGULATION_COLUMNS)
    assert list(table["decision"]) == ["test", "hold"]
    with pytest.raises(ValueError, match=r"missing column.*mmm_mroas"):
        triangulate(inputs.drop(columns="mmm_mroas"))
    with pytest.raises(ValueError, match="target_roas must be positive"):
        triangulate(inputs, target_roas=0)


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
            "channel": ["tv", "tv"],
            "method": ["synthetic_control"] * 2,
            "iroas": [5.0, 2.5],
            "end": ["2025-01-01", "2026-02-01"],
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
    assert inputs.loc["tv", "experiment_iroas"] == 2.5  # latest experiment
    assert np.isnan(inputs.loc["search", "experiment_iroas"])
    assert inputs.loc["tv", "calibration_source"] == "experiment"
    assert inputs.loc["search", "mta_calibration_factor"] == pytest.approx(3.0 / 4.5)
    assert inputs.loc["search", "calibration_source"] == "mmm"
    table = triangulate(inputs.reset_index(), target_roas=2.0).set_index("channel")
    # tv: the experiment (2.5) says it pays, click-based MTA (0.5) under-credits it
    assert table.loc["tv", "decision"] == "scale"
    assert table.loc["tv", "flag"] == "mta_under_credits"


def test_a_paid_channel_click_tracking_never_credits_is_flagged_as_under_credited():
    row = _decide(mta_roas=0.0, mmm_roas=3.0, mmm_mroas=2.5)
    assert row["flag"] == "mta_under_credits"
    assert row["decision"] == "test"  # MMM positive, MTA weak: propose an experiment


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
