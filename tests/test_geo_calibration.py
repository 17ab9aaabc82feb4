"""Experiment results -> pymc-marketing lift-test rows and MTA calibration factors."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from triangulate.geo.calibration import (
    calibrating_results,
    experiment_spend,
    lift_test_rows,
    mmm_lift_test_rows,
    mta_calibration_factor,
    window_change,
)

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
        "start_date": START, "end_date": END,
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
    # an MMM of a count (orders) calibrates on the count columns, where such a test's
    # increment is (issue #20: incremental_revenue is NULL for a count metric)
    orders = _result(
        metric_kind="count", incremental_revenue=np.nan, incremental_revenue_ci_low=np.nan,
        incremental_revenue_ci_high=np.nan, incremental_conversions=-420.0,
        incremental_conversions_ci_low=-520.0, incremental_conversions_ci_high=-320.0,
    )  # fmt: skip
    (count,) = lift_test_rows(orders, 600.0).to_dict("records")
    assert count == pytest.approx({**row, "delta_y": -420.0 / 4, "sigma": 200.0 / (2 * z) / 4})


def _market_curve(weights: np.ndarray, beta: float = 9.0, k: float = 800.0):
    """Weekly revenue of geos that respond alike per head (Michaelis-Menten, as the
    simulator): geo g with population weight w_g and weekly spend x_g returns
    beta * w_g * (x_g / w_g) / (x_g / w_g + k)."""

    def geo_revenue(spend: np.ndarray) -> np.ndarray:
        per_head = spend / weights
        return beta * weights * per_head / (per_head + k)

    return geo_revenue


@pytest.mark.parametrize("multiplier", [0.0, 2.0])  # a holdout and a heavy-up
def test_national_rows_scale_a_geo_slice_to_the_market(multiplier):
    """In a market of geos alike per head, the scaled row states exactly what the test
    measured on the market's own curve f(X) = sum_g f_g(X w_g / W); the unscaled change at
    the market's spend (a dilution everywhere) misstates it."""
    weights = np.array([3.0, 2.0, 1.0, 1.5, 2.5])  # geos 0, 1 treated: share s = 0.5
    treated = np.array([True, True, False, False, False])
    geo_revenue = _market_curve(weights)
    market_week = 5_000.0  # USD per week, spread per head
    spend = market_week * weights / weights.sum()

    def market(x_week: float) -> float:
        return float(geo_revenue(x_week * weights / weights.sum()).sum())

    tested = np.where(treated, spend * multiplier, spend)
    lift_week = float((geo_revenue(tested) - geo_revenue(spend)).sum())  # USD per week
    spend_change_week = float((tested - spend).sum())
    result = _result(
        spend_change=spend_change_week * 4, incremental_revenue=lift_week * 4,
        incremental_revenue_ci_low=lift_week * 4 - 1_000, incremental_revenue_ci_high=lift_week * 4 + 1_000,
    )  # fmt: skip
    treated_day, market_day = spend[treated].sum() / 7, market_week / 7
    (row,) = lift_test_rows(result, treated_day, market_spend_per_day=market_day).to_dict("records")
    share = treated_day / market_day
    assert share == pytest.approx(0.5)
    assert row["x"] == pytest.approx(market_week)
    assert row["delta_x"] == pytest.approx(spend_change_week / share)
    assert row["sigma"] == pytest.approx(1_000 / norm.ppf(0.95) / 4 / share)
    # the curve the national model fits, at the row's x and x + delta_x, says what was measured
    assert market(row["x"] + row["delta_x"]) - market(row["x"]) == pytest.approx(row["delta_y"])
    # the unscaled row at the market's spend (the old encoding) asks for a different change
    old = lift_test_rows(result, market_day).iloc[0]
    implied = market(old["x"] + old["delta_x"]) - market(old["x"])
    assert abs(implied - old["delta_y"]) > 0.05 * abs(old["delta_y"])


def test_national_rows_refuse_an_impossible_market():
    with pytest.raises(ValueError, match="must be at least the treatment geos"):
        lift_test_rows(_result(), 600.0, market_spend_per_day=500.0)
    with pytest.raises(ValueError, match="for a national model"):
        lift_test_rows(_result(), {"G01": 600.0}, market_spend_per_day=900.0)


def test_experiment_spend_is_the_treated_change_and_the_market_around_it():
    spend = _daily_spend(
        {"G01": 200.0, "G02": 400.0, "G03": 50.0, "G04": 150.0},
        {"G01": 0.0, "G02": 0.0, "G03": 75.0, "G04": 225.0},  # others up 50 % in the window
    )
    out = experiment_spend(spend, "tv", ["G01", "G02"], ["G03"], START, END)
    assert out.treated.change == pytest.approx(-900.0 * 28)  # follows the control's +50 %
    assert out.treated_per_day == pytest.approx(900.0)
    assert out.market_per_day == pytest.approx(900.0 + 75.0 + 225.0)  # G04 counts as market
    everyone = experiment_spend(spend, "tv", ["G01", "G02"], None, START, END)
    assert everyone.treated.change == pytest.approx(-900.0 * 28)


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


def test_only_results_on_the_mmm_target_calibrate_it():
    """An ``orders`` holdout's lift is a count: read as money it pulled meta's ROAS to 0.008
    in a brand's calibrated run. Only the MMM's own metric calibrates it; the rest are named."""
    results = pd.DataFrame(
        {
            "experiment_id": ["rev", "orders", "errored", "other_channel", "naive"],
            "channel": ["meta", "meta", "meta", "radio", "meta"],
            "method": ["synthetic_control"] * 4 + ["difference_in_differences"],
            "metric": ["net_revenue", "orders", "net_revenue", "net_revenue", "net_revenue"],
            "status": ["ok", "ok", "error", "ok", "ok"],
        }
    )
    kept, skipped = calibrating_results(results, ["meta", "tv"], "net_revenue")
    assert kept["experiment_id"].tolist() == ["rev"]
    assert len(skipped) == 1 and "'orders'" in skipped[0] and "net_revenue" in skipped[0]


# --- Geo model: one row per treatment geo (issue 25) ---------------------------------------


def test_experiment_spend_splits_the_counterfactual_by_treatment_geo():
    spend = _daily_spend(
        {"G01": 200.0, "G02": 400.0, "G03": 50.0, "G04": 150.0},
        {"G01": 0.0, "G02": 0.0, "G03": 75.0, "G04": 225.0},  # references up 50 %
    )
    out = experiment_spend(spend, "tv", ["G01", "G02"], ["G03", "G04"], START, END)
    # each geo's own run rate times the references' +50 %, adding up to the treated total
    assert out.treated_per_geo_per_day == pytest.approx({"G01": 300.0, "G02": 600.0})
    assert sum(out.treated_per_geo_per_day.values()) == pytest.approx(out.treated_per_day)


def test_geo_rows_put_each_treatment_geo_on_its_own_curve():
    """Geos alike per head that spend alike per head (the design's assumption): each geo's
    row states exactly the lift that geo's own curve gives for its own spend change, and a
    holdout pauses every treatment geo (x + delta_x = 0)."""
    weights = np.array([3.0, 1.0, 2.0])  # G01, G02 treated; G03 untreated
    geo_revenue = _market_curve(weights)
    spend = 1_400.0 * weights  # USD per week, alike per head
    tested = np.array([0.0, 0.0, spend[2]])
    lift_week = float((geo_revenue(tested) - geo_revenue(spend)).sum())
    daily = _daily_spend(
        dict(zip(["G01", "G02", "G03"], spend / 7, strict=True)),
        dict(zip(["G01", "G02", "G03"], tested / 7, strict=True)),
    )
    measured = experiment_spend(daily, "tv", ["G01", "G02"], ["G03"], START, END)
    result = _result(
        spend_change=measured.treated.change, incremental_revenue=lift_week * 4,
        incremental_revenue_ci_low=lift_week * 4 - 1_000, incremental_revenue_ci_high=lift_week * 4 + 1_000,
    )  # fmt: skip
    rows = mmm_lift_test_rows(result, measured, geo_model=True)
    assert list(rows.columns) == ["channel", "geo", "x", "delta_x", "delta_y", "sigma"]
    assert rows["geo"].tolist() == ["G01", "G02"]
    np.testing.assert_allclose(rows["x"], spend[:2])
    np.testing.assert_allclose(rows["x"] + rows["delta_x"], 0.0, atol=1e-9)
    for i, row in enumerate(rows.itertuples()):  # each geo's curve, at its own spend
        own = np.zeros(3)
        own[i] = row.x
        changed = own.copy()
        changed[i] = row.x + row.delta_x
        true = geo_revenue(changed)[i] - geo_revenue(own)[i]
        assert row.delta_y == pytest.approx(true)
    # one experiment's information: lifts add up to the lift, variances to its variance
    assert rows["delta_y"].sum() == pytest.approx(lift_week)
    se = 1_000 / norm.ppf(0.95) / 4
    assert np.sqrt((rows["sigma"] ** 2).sum()) == pytest.approx(se)
    np.testing.assert_allclose(rows["sigma"], se * np.sqrt([0.75, 0.25]))
    # the national model keeps its market-scaled row
    (national,) = mmm_lift_test_rows(result, measured, geo_model=False).to_dict("records")
    expected = lift_test_rows(
        result, measured.treated_per_day, market_spend_per_day=measured.market_per_day
    ).iloc[0]
    assert national == pytest.approx(expected.to_dict())
    assert national["x"] == pytest.approx(spend.sum())


def test_geo_rows_leave_out_geos_without_spend_and_refuse_when_none_spent():
    spend = _daily_spend(
        {"G01": 0.0, "G02": 400.0, "G03": 50.0}, {"G01": 0.0, "G02": 0.0, "G03": 50.0}
    )
    measured = experiment_spend(spend, "tv", ["G01", "G02"], ["G03"], START, END)
    rows = mmm_lift_test_rows(
        _result(spend_change=measured.treated.change), measured, geo_model=True
    )
    assert rows["geo"].tolist() == ["G02"]
    assert rows["delta_y"].iloc[0] == pytest.approx(-42_000.0 / 4)
    nothing = _daily_spend({"G01": 0.0, "G02": 50.0}, {"G01": 0.0, "G02": 50.0})
    none = experiment_spend(nothing, "tv", ["G01"], ["G02"], START, END)
    with pytest.raises(ValueError, match="no treatment geo spent on tv"):
        mmm_lift_test_rows(_result(), none, geo_model=True)


def test_geo_model_conditions_each_geo_on_its_own_scale():
    """pymc-marketing's mechanism takes the geo rows: each geo's lift is divided by that
    geo's target scale (its mean weekly revenue in the population-scaled geo model)."""
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import build_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=60, n_channels=2, n_geos=3, seed=5)
    config = load_config(channels=["ch1", "ch2"], controls=[], model={"hierarchy": "geo"})
    rows = pd.DataFrame(
        {
            "channel": "ch1", "geo": ["G00", "G02"], "x": [1_000.0, 2_000.0],
            "delta_x": [-1_000.0, -2_000.0], "delta_y": [-300.0, -600.0], "sigma": [50.0, 70.0],
        }
    )  # fmt: skip
    mmm = build_mmm(config, prepare_weekly(weekly, config), rows)
    observed = mmm.model.rvs_to_values[mmm.model["lift_measurements"]]
    scale = mmm.scalers["_target"].sel(geo=["G00", "G02"]).to_numpy()
    np.testing.assert_allclose(observed.data, np.array([-300.0, -600.0]) / scale)
