"""measurement.mta_calibrated_daily: MTA credit re-weighted per channel by its latest
experiment (else the MMM), summing to the causal revenue over the calibration window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from triangulate.mta.calibration import calibrated_daily, calibration_factors

WEEKS = pd.date_range("2026-01-05", periods=8, freq="W-MON")


def _world():
    days = pd.date_range(WEEKS[0], periods=7 * len(WEEKS), freq="D")
    daily = pd.DataFrame(
        [
            {"date": d, "channel": ch, "campaign": f"{ch}_{k}", "conversions": 1.0 + k,
             "revenue": (100.0 if ch == "brand" else 20.0) * (1 + k)}
            for d in days for ch in ("brand", "meta") for k in (0, 1)
        ]
    )  # fmt: skip
    weekly = (
        daily.assign(week_start=daily["date"] - pd.to_timedelta(daily["date"].dt.weekday, "D"))
        .groupby(["week_start", "channel"], as_index=False)["revenue"]
        .sum()
    )
    spend = weekly.assign(spend=1000.0)[["week_start", "channel", "spend"]]
    contributions = weekly.rename(columns={"channel": "component"}).assign(
        contribution=lambda f: np.where(f["component"] == "brand", 300.0, 900.0)
    )[["week_start", "component", "contribution"]]
    return daily, weekly, spend, contributions


def test_mmm_factor_makes_the_daily_credit_sum_to_the_mmm_contribution() -> None:
    daily, weekly, spend, contributions = _world()
    factors = calibration_factors(weekly, spend, contributions, mmm_run_id="run-1")
    table = calibrated_daily(daily, factors, mta_model="markov_1", run_id="run-1")
    sums = table.groupby("channel")["calibrated_revenue"].sum()
    assert sums["brand"] == pytest.approx(300.0 * len(WEEKS))  # brand: MTA 2100/week -> 300
    assert sums["meta"] == pytest.approx(900.0 * len(WEEKS))
    assert set(table["factor_source"]) == {"mmm"} and set(table["factor_source_id"]) == {"run-1"}
    assert table.loc[table["channel"] == "brand", "calibration_factor"].iloc[0] < 1


def test_the_experiment_factor_is_used_when_one_exists() -> None:
    """meta was tested (iROAS 2.5 over weeks 3-4): its factor comes from the test, and the
    calibrated credit of those weeks sums to iROAS x their spend; brand keeps the MMM's."""
    daily, weekly, spend, contributions = _world()
    experiments = pd.DataFrame(
        {
            "experiment_id": ["old_test", "meta_holdout", "meta_holdout"],
            "channel": ["meta", "meta", "meta"],
            "method": ["synthetic_control", "synthetic_control", "difference_in_differences"],
            "iroas": [9.0, 2.5, 7.0],
            "start_date": [WEEKS[0], WEEKS[2], WEEKS[2]],
            "end_date": [
                WEEKS[0] + pd.Timedelta(days=6),
                WEEKS[3] + pd.Timedelta(days=6),
                WEEKS[3],
            ],
        }
    )
    # a later test on orders (a count: no iROAS) is not a revenue factor (issue #20)
    orders = experiments.iloc[[1]].assign(experiment_id="meta_orders", iroas=np.nan)
    orders["end_date"] += pd.Timedelta(days=7)
    experiments = pd.concat([experiments, orders], ignore_index=True)
    experiments["metric_kind"] = ["money"] * 3 + ["count"]
    factors = calibration_factors(weekly, spend, contributions, experiments, mmm_run_id="r")
    by = factors.set_index("channel")
    assert by.loc["meta", "factor_source"] == "experiment"
    assert by.loc["meta", "factor_source_id"] == "meta_holdout"  # the latest synthetic control
    assert by.loc["brand", "factor_source"] == "mmm"
    table = calibrated_daily(daily, factors, mta_model="markov_1")
    window = table[
        (table["channel"] == "meta")
        & (pd.to_datetime(table["date"]) >= WEEKS[2])
        & (pd.to_datetime(table["date"]) < WEEKS[4])
    ]
    assert window["calibrated_revenue"].sum() == pytest.approx(2.5 * 2 * 1000.0)


def test_a_causal_estimate_of_the_opposite_sign_leaves_the_channel_uncalibrated() -> None:
    _daily, weekly, spend, contributions = _world()
    contributions.loc[contributions["component"] == "brand", "contribution"] = -50.0
    factors = calibration_factors(weekly, spend, contributions).set_index("channel")
    assert np.isnan(factors.loc["brand", "calibration_factor"])
    assert factors.loc["brand", "factor_source"].startswith("mmm (not usable")


def test_daily_credit_spreads_each_week_over_its_conversion_days() -> None:
    from triangulate.mta.calibration import daily_credit

    credit = pd.DataFrame(
        {
            "week_start": [WEEKS[0], WEEKS[0], WEEKS[1]],
            "channel": ["meta", "meta", "tv"],
            "campaign": ["a", "b", "c"],
            "conversions": [3.0, 1.0, 2.0],
            "revenue": [300.0, 100.0, 50.0],
        }
    )
    share = pd.DataFrame(
        {
            "week_start": [WEEKS[0]] * 3,
            "date": [WEEKS[0], WEEKS[0] + pd.Timedelta(days=2), WEEKS[0] + pd.Timedelta(days=3)],
            "channel": ["meta"] * 3,
            "campaign": ["a", "a", "b"],
            "linear_conversions": [0.5, 1.5, 0.25],
        }
    )
    daily = daily_credit(credit, share).set_index(["campaign", "date"])
    assert daily.loc[("a", WEEKS[0]), "revenue"] == pytest.approx(75.0)  # 300 x 0.5 / 2
    assert daily.loc[("a", WEEKS[0] + pd.Timedelta(days=2)), "conversions"] == pytest.approx(2.25)
    assert daily.loc[("b", WEEKS[0] + pd.Timedelta(days=3)), "revenue"] == pytest.approx(100.0)
    assert daily.loc[("c", WEEKS[1]), "revenue"] == pytest.approx(50.0)  # no share: its Monday
    assert daily["revenue"].sum() == pytest.approx(credit["revenue"].sum())
