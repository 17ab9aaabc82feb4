"""Experiment analysis on synthetic panels with a known injected lift (40 geos x 3 years of days)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from triangulate.geo.analysis import (
    DIAGNOSTIC_COLUMNS,
    RESULT_COLUMNS,
    analyze_experiment,
    analyze_registry,
    empty_results,
)
from triangulate.geo.panel import to_wide
from triangulate.geo.registry import ExperimentSpec
from triangulate.geo.simulation import inject_lift, synthetic_geo_panel

TREATED = ["G03", "G08", "G15", "G22", "G29", "G36"]
START, END = date(2025, 11, 3), date(2025, 11, 30)  # 4 weeks
CONTRACT = [
    "experiment_id", "channel", "method", "lift_abs", "lift_pct", "ci_low", "ci_high",
    "p_value", "incremental_revenue", "spend_change", "iroas", "metric", "metric_kind",
    "incremental_conversions", "cost_per_incremental_conversion",
]  # fmt: skip


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_geo_panel(n_geos=40, n_periods=1095, seed=11)


@pytest.fixture(scope="module")
def holdout(history):
    """A holdout that loses 8 % of revenue in 6 geos for 4 weeks; spend removed: 50k."""
    panel, true_incremental = inject_lift(history, TREATED, START, END, -8.0)
    spec = {
        "id": "tv-holdout",
        "channel": "tv",
        "kind": "holdout",
        "treatment_geos": TREATED,
        "control_geos": None,
        "start": START,
        "end": END,
        "metric": "net_revenue",
    }
    results = analyze_experiment(spec, panel, spend_change=-50_000.0)
    return results, true_incremental


def test_result_rows_have_the_contract_columns_first(holdout):
    results, _ = holdout
    assert list(results.columns[: len(CONTRACT)]) == CONTRACT
    assert tuple(results.columns) == RESULT_COLUMNS + DIAGNOSTIC_COLUMNS
    assert list(results["method"]) == ["synthetic_control", "difference_in_differences"]
    assert results["interval_method"].str.startswith("conformal").all()
    assert list(empty_results().columns) == list(results.columns)


def test_synthetic_control_recovers_the_injected_lift(holdout):
    results, true_incremental = holdout
    sc = results.set_index("method").loc["synthetic_control"]
    true_att = true_incremental / (len(TREATED) * 28)
    assert sc["ci_low"] <= true_att <= sc["ci_high"]
    assert abs(sc["lift_abs"] - true_att) <= 0.25 * abs(true_att)
    assert abs(sc["incremental_revenue"] - true_incremental) <= 0.25 * abs(true_incremental)
    assert sc["lift_pct"] == pytest.approx(-8.0, abs=2.0)
    assert sc["lift_pct_ci_low"] <= -8.0 <= sc["lift_pct_ci_high"]
    assert sc["p_value"] <= 0.05
    assert sc["placebo_space_p_value"] <= 0.1
    assert sc["pre_r2"] > 0.8
    # the placebo window before the test has no effect
    assert sc["placebo_time_p_value"] > 0.1


def test_holdout_of_a_working_channel_has_positive_iroas(holdout):
    results, true_incremental = holdout
    sc = results.set_index("method").loc["synthetic_control"]
    assert sc["incremental_revenue"] < 0 and sc["spend_change"] < 0
    assert sc["iroas"] == pytest.approx(sc["incremental_revenue"] / -50_000.0)
    assert sc["iroas"] > 0
    assert sc["iroas_ci_low"] <= true_incremental / -50_000.0 <= sc["iroas_ci_high"]


MONEY_ONLY = ["incremental_revenue", "iroas", "incremental_revenue_ci_low", "iroas_ci_high"]
COUNT_ONLY = [
    "incremental_conversions", "cost_per_incremental_conversion",
    "incremental_conversions_ci_low", "cost_per_incremental_conversion_ci_high",
]  # fmt: skip


def test_a_count_metric_is_not_labelled_as_money(history, holdout):
    """Issue #20: an ``orders`` experiment fills the count columns (incremental orders, cost
    per incremental order = spend / orders) and leaves revenue and iROAS NULL; a money
    metric the reverse. Money or count is MetricLabels.of's rule, the geo CLI's."""
    from triangulate.geo.analysis import error_row

    money = holdout[0].set_index("method").loc["synthetic_control"]
    panel, _ = inject_lift(history, TREATED, START, END, -8.0)
    spec = {
        "id": "tv-orders", "channel": "tv", "kind": "holdout", "treatment_geos": TREATED,
        "control_geos": None, "start": START, "end": END, "metric": "orders",
    }  # fmt: skip
    count = analyze_experiment(
        spec, panel, spend_change=-50_000.0, methods=("synthetic_control",), n_placebos=0
    ).iloc[0]
    assert (money["metric"], money["metric_kind"]) == ("net_revenue", "money")
    assert (count["metric"], count["metric_kind"]) == ("orders", "count")
    assert money[MONEY_ONLY].notna().all() and money[COUNT_ONLY].isna().all()
    assert count[COUNT_ONLY].notna().all() and count[MONEY_ONLY].isna().all()
    assert count["incremental_conversions"] == pytest.approx(money["incremental_revenue"])
    cost = count["cost_per_incremental_conversion"]
    assert cost == pytest.approx(-50_000.0 / count["incremental_conversions"]) and cost > 0
    assert (
        count["cost_per_incremental_conversion_ci_low"]
        <= cost
        <= count["cost_per_incremental_conversion_ci_high"]
    )
    failed = error_row(ExperimentSpec.from_dict(spec), "no data").iloc[0]
    assert (failed["metric"], failed["metric_kind"], failed["status"]) == (
        "orders",
        "count",
        "error",
    )


def test_difference_in_differences_is_a_second_estimate(holdout):
    results, true_incremental = holdout
    did = results.set_index("method").loc["difference_in_differences"]
    true_att = true_incremental / (len(TREATED) * 28)
    assert did["ci_low"] <= true_att <= did["ci_high"]
    assert did["scaled_l2_imbalance"] == pytest.approx(1.0)


def test_placebo_on_untreated_geos_finds_no_lift(history):
    panel, _ = inject_lift(history, TREATED, START, END, -8.0)
    placebo_geos = ["G05", "G11", "G18", "G25", "G31", "G39"]
    controls = [g for g in sorted(panel["geo"].unique()) if g not in TREATED + placebo_geos]
    spec = {
        "id": "placebo", "channel": "none", "kind": "heavy_up", "treatment_geos": placebo_geos,
        "control_geos": controls, "start": START, "end": END, "metric": "net_revenue",
    }  # fmt: skip
    sc = analyze_experiment(spec, panel).set_index("method").loc["synthetic_control"]
    assert sc["ci_low"] <= 0.0 <= sc["ci_high"]
    assert sc["p_value"] > 0.1
    assert abs(sc["lift_pct"]) < 2.0
    assert np.isnan(sc["iroas"])  # no spend change given


def test_six_versus_six_geos_still_gets_a_conformal_interval(history):
    weekly = (
        history.assign(date=pd.to_datetime(history["date"]).dt.to_period("W-SUN").dt.start_time)
        .groupby(["date", "geo"], as_index=False)["value"].sum()
    )  # fmt: skip
    weekly = weekly[weekly["date"] < pd.Timestamp("2025-12-29")]
    panel, true_incremental = inject_lift(weekly, TREATED, START, END, 10.0)
    controls = ["G01", "G02", "G04", "G06", "G07", "G09"]
    spec = {
        "id": "six", "channel": "search", "kind": "heavy_up", "treatment_geos": TREATED,
        "control_geos": controls, "start": START, "end": END, "metric": "net_revenue",
    }  # fmt: skip
    results = analyze_experiment(spec, panel, spend_change=20_000.0)
    with pytest.warns(UserWarning, match="does not cover whole panel periods"):
        analyze_experiment({**spec, "start": date(2025, 11, 5)}, panel, n_placebos=0)
    sc = results.set_index("method").loc["synthetic_control"]
    assert sc["n_test_periods"] == 4 and sc["period_days"] == 7
    assert sc["ci_low"] <= true_incremental / 24 <= sc["ci_high"]
    # too few donors for placebo-in-space: reported as missing, not invented
    assert np.isnan(sc["placebo_space_p_value"]) and sc["placebo_space_groups"] == 0


def test_bad_inputs_name_what_is_wrong(history):
    spec = {
        "id": "x", "channel": "tv", "kind": "holdout", "treatment_geos": ["G01", "NOPE"],
        "start": START, "end": END, "metric": "net_revenue",
    }  # fmt: skip
    with pytest.raises(ValueError, match="NOPE not in the panel"):
        analyze_experiment(spec, history)
    with pytest.raises(ValueError, match="'kind' must be holdout or heavy_up"):
        analyze_experiment({**spec, "kind": "flighting"}, history)
    gappy = history.drop(index=history.index[(history["geo"] == "G07")][:3])
    with pytest.raises(ValueError, match="geo G07 has no row for 3 period"):
        to_wide(gappy)
    dup = pd.concat([history.iloc[:5], history.iloc[:1]])
    with pytest.raises(ValueError, match=r"row 6: duplicate \(date, geo\)"):
        to_wide(dup)
    with pytest.raises(ValueError, match="negative for a holdout"):
        analyze_experiment(spec | {"treatment_geos": ["G01"]}, history, spend_change=1000.0)
    with pytest.raises(ValueError, match="outside the panel"):
        analyze_experiment({**spec, "treatment_geos": ["G01"], "end": date(2027, 1, 1)}, history)


def test_every_registered_experiment_from_one_mart_table(history):
    weekly = (
        history.assign(week_start=pd.to_datetime(history["date"]).dt.to_period("W-SUN").dt.start_time)
        .groupby(["week_start", "geo"], as_index=False)["value"].sum()
        .rename(columns={"value": "net_revenue"})
    )  # fmt: skip
    weekly = weekly[weekly["week_start"] < pd.Timestamp("2025-12-29")]
    lifted, _ = inject_lift(
        weekly.rename(columns={"week_start": "date", "net_revenue": "value"}),
        TREATED, START, END, -10.0,
    )  # fmt: skip
    mart = lifted.rename(columns={"date": "week_start", "value": "net_revenue"})
    specs = [
        ExperimentSpec(
            "tv", "tv", "holdout", tuple(TREATED), None, START, END, "net_revenue", -9e4
        ),
        ExperimentSpec("pod", "podcast", "heavy_up", ("G01",), None, START, END, "net_revenue"),
    ]
    results = analyze_registry(specs, mart, spend_changes={"pod": 5e3})
    assert list(results["experiment_id"]) == ["tv", "tv", "pod", "pod"]
    assert list(results.loc[results["experiment_id"] == "pod", "spend_change"]) == [5e3, 5e3]
    assert (results.loc[results["experiment_id"] == "tv", "iroas"] > 0).all()
    assert analyze_registry([], mart).empty
    # an experiment that cannot be analysed gets one error row naming it (issue #19)
    failed = analyze_registry([replace(specs[0], metric="orders")], mart)
    assert failed[["experiment_id", "method", "status"]].values.tolist() == [
        ["tv", "none", "error"]
    ]
    assert "experiment tv: metric 'orders' is not a column" in failed["notes"].iloc[0]


def test_geo_names_match_ignoring_case_and_unknown_ones_get_near_matches():
    from triangulate.geo.panel import UnknownGeoError, match_geos

    known = ["chicago", "new york", "portland", "boston"]
    assert match_geos(["Chicago", "NEW  York"], known) == ("chicago", "new york")
    with pytest.raises(UnknownGeoError) as caught:
        match_geos(["portlnd", "zzz"], known, what="--treated")
    assert caught.value.near == {"portlnd": ("portland",), "zzz": ()}
    assert str(caught.value).startswith(
        "--treated: geo(s) portlnd, zzz not in the panel (portlnd: did you mean portland?; "
        "zzz: no near match); panel geos: chicago"
    )


def test_overlapping_experiments_are_found():
    from triangulate.geo.analysis import overlapping_experiments

    def spec(name, treated, start, end, control=None):
        return ExperimentSpec(name, "tv", "holdout", treated, control, start, end, "net_revenue")

    specs = [
        spec("a", ("G01", "G02"), date(2026, 3, 2), date(2026, 3, 29)),
        spec("b", ("g02",), date(2026, 3, 23), date(2026, 4, 19)),  # shares G02 for a week
        spec(
            "c", ("G03",), date(2026, 3, 2), date(2026, 3, 29), ("G01", "G04")
        ),  # a's G01 as control
        spec("d", ("G01",), date(2026, 5, 4), date(2026, 5, 31)),  # later: no overlap
    ]
    notes = overlapping_experiments(specs)
    assert set(notes) == {"a", "b", "c"}
    assert notes["b"] == [
        "overlaps experiment a (tv) in geo(s) g02 from 2026-03-23 to 2026-03-29: the two "
        "effects are not separable"
    ]
    assert len(notes["a"]) == 2 and notes["c"][0].startswith(
        "overlaps experiment a (tv) in geo(s) g01"
    )
