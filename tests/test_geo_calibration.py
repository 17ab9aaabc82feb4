"""Experiment results -> pymc-marketing lift-test rows and MTA calibration factors."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from dagster_project.geo.calibration import lift_test_rows, mta_calibration_factor, window_change

START, END = date(2026, 3, 2), date(2026, 3, 29)  # 28 days = 4 MMM weeks


def _daily_spend(per_geo_per_day: dict[str, float], during: dict[str, float]) -> pd.DataFrame:
    days = pd.date_range("2026-01-01", "2026-04-15", freq="D")
    rows = []
    for geo, base in per_geo_per_day.items():
        for day in days:
            in_test = pd.Timestamp(START) <= day <= pd.Timestamp(END)
            rows.append(
                {
                    "date": day,
                    "geo": geo,
                    "channel": "tv",
                    "spend": during[geo] if in_test else base,
                }
            )
            rows.append({"date": day, "geo": geo, "channel": "search", "spend": 999.0})
    return pd.DataFrame(rows)


def _result(**overrides) -> dict:
    row = {
        "experiment_id": "tv-holdout", "channel": "tv", "spend_change": -16_800.0,
        "incremental_revenue": -42_000.0, "incremental_revenue_ci_low": -52_000.0,
        "incremental_revenue_ci_high": -32_000.0, "interval_level": 0.9,
        "start": START.isoformat(), "end": END.isoformat(),
    }  # fmt: skip
    row.update(overrides)
    return row


def test_spend_change_of_a_holdout_is_negative_and_exact():
    spend = _daily_spend(
        {"G01": 200.0, "G02": 400.0, "G03": 50.0}, {"G01": 0.0, "G02": 0.0, "G03": 50.0}
    )
    change = window_change(spend, "spend", ["G01", "G02"], START, END, channel="tv")
    assert change.baseline_per_day == pytest.approx(600.0)
    assert change.window_total == 0.0
    assert change.window_days == 28
    assert change.change == pytest.approx(-600.0 * 28)


def test_spend_change_follows_the_reference_geos_trend():
    """A national budget swing during the test is not the test: the counterfactual scales
    the treatment geos' run rate by the reference geos' window / baseline ratio."""
    spend = _daily_spend(
        {"G01": 200.0, "G02": 400.0, "G03": 50.0, "G04": 150.0},
        {"G01": 0.0, "G02": 0.0, "G03": 75.0, "G04": 225.0},  # references up 50 %
    )
    flat = window_change(spend, "spend", ["G01", "G02"], START, END, channel="tv")
    change = window_change(
        spend, "spend", ["G01", "G02"], START, END, channel="tv", reference_geos=["G03", "G04"]
    )
    assert flat.change == pytest.approx(-600.0 * 28)  # the old run rate misses the swing
    assert change.reference_ratio == pytest.approx(1.5)
    assert change.baseline_per_day == pytest.approx(600.0)
    assert change.expected_total == pytest.approx(600.0 * 28 * 1.5)
    assert change.change == pytest.approx(-900.0 * 28)


def test_spend_change_reference_geos_errors_are_named():
    spend = _daily_spend({"G01": 200.0, "G02": 0.0}, {"G01": 0.0, "G02": 0.0})
    with pytest.raises(ValueError, match="G01 are also test geos"):
        window_change(spend, "spend", ["G01"], START, END, channel="tv", reference_geos=["G01"])
    with pytest.raises(ValueError, match="reference geos have no spend"):
        window_change(spend, "spend", ["G01"], START, END, channel="tv", reference_geos=["G02"])
    with pytest.raises(ValueError, match="reference geos G09"):
        window_change(spend, "spend", ["G01"], START, END, channel="tv", reference_geos=["G09"])


def test_lift_test_rows_national():
    (row,) = lift_test_rows(_result(), 600.0).to_dict("records")
    z = norm.ppf(0.95)
    assert row == pytest.approx(
        {
            "channel": "tv",
            "x": 600.0 * 7,  # spend per MMM week before the test
            "delta_x": -16_800.0 / 4,  # the whole baseline removed
            "delta_y": -42_000.0 / 4,
            "sigma": 20_000.0 / (2 * z) / 4,
        }
    )


def test_lift_test_rows_per_geo_carry_one_experiment_of_information():
    national = lift_test_rows(_result(), 600.0).iloc[0]
    geo = lift_test_rows(_result(), {"G01": 200.0, "G02": 400.0})
    assert list(geo.columns) == ["channel", "geo", "x", "delta_x", "delta_y", "sigma"]
    assert geo["delta_x"].sum() == pytest.approx(national["delta_x"])
    assert geo["delta_y"].sum() == pytest.approx(national["delta_y"])
    # independent geo rows: variances add back up to the experiment's variance
    assert np.sqrt((geo["sigma"] ** 2).sum()) == pytest.approx(national["sigma"])
    np.testing.assert_allclose(geo["x"], [1400.0, 2800.0])


def test_lift_test_rows_refuse_what_they_cannot_express():
    with pytest.raises(ValueError, match="need a non-zero spend_change"):
        lift_test_rows(_result(spend_change=float("nan")), 600.0)
    with pytest.raises(ValueError, match="removes more than the baseline spend"):
        lift_test_rows(_result(spend_change=-50_000.0), 600.0)


def test_pymc_marketing_accepts_the_rows():
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.mmm import MMM

    rng = np.random.default_rng(0)
    weeks = pd.date_range("2025-06-02", periods=30, freq="W-MON")
    x = pd.DataFrame(
        {"date": weeks, "tv": rng.uniform(3000, 5000, 30), "search": rng.uniform(100, 900, 30)}
    )
    y = pd.Series(50_000 + 2 * x["tv"] + rng.normal(0, 500, 30), name="revenue")
    mmm = MMM(
        date_column="date", channel_columns=["tv", "search"], target_column="revenue",
        adstock=GeometricAdstock(l_max=4), saturation=LogisticSaturation(),
    )  # fmt: skip
    mmm.build_model(x, y)
    mmm.add_lift_test_measurements(lift_test_rows(_result(), 600.0))
    assert "lift_measurements" in {rv.name for rv in mmm.model.observed_RVs}


def test_mta_calibration_factor_from_a_holdout():
    credit = _daily_spend({"G01": 100.0, "G02": 50.0}, {"G01": 0.0, "G02": 0.0}).rename(
        columns={"spend": "revenue"}
    )
    mta_change = window_change(credit, "revenue", ["G01", "G02"], START, END, channel="tv").change
    assert mta_change == pytest.approx(-150.0 * 28)
    # the holdout lost 3x the revenue MTA credited to tv there: MTA under-credits tv 3x
    assert mta_calibration_factor(-3 * 150.0 * 28, mta_change) == pytest.approx(3.0)
    assert np.isnan(mta_calibration_factor(1000.0, 0.0))
    assert np.isnan(mta_calibration_factor(1000.0, -10.0))
