"""Bayesian MMM (issue 8): config validation, priors, recovery, the gate, save/load.

Sampling tests use 2 chains x 500 draws with nutpie; the end-to-end ones are marked slow.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from triangulate.mmm.config import DEFAULT_CONFIG_PATH, ConfigError, load_config

REFERENCE = Path(__file__).resolve().parent / "data" / "mmm_example"  # source: its README


def reference_config(**overrides):
    """The generating structure of the reference data (its README): geometric adstock
    l_max 8, logistic saturation, yearly seasonality, events as controls, trend."""
    base = {
        "channels": ["x1", "x2"],
        "controls": ["event_1", "event_2"],
        "data": {"date_column": "date_week", "target_column": "y"},
        "model": {
            "adstock": "geometric",
            "l_max": 8,
            "saturation": "logistic",
            "yearly_seasonality": 2,
            "trend": True,
        },
        "sampler": {
            "chains": 2,
            "draws": 500,
            "tune": 500,
            "seed": 11,
            "prior_predictive_draws": 200,
        },
        "gate": {"r_hat_max": 1.05, "ess_bulk_min": 100, "holdout_weeks": 0},
    }
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return load_config(**base)


@pytest.fixture(scope="module")
def reference_frame() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "mmm_example.csv")


@pytest.fixture(scope="module")
def reference_fit(reference_frame):
    from triangulate.mmm.model import fit_mmm, prepare_weekly

    config = reference_config()
    return fit_mmm(config, prepare_weekly(reference_frame, config))


# --- configuration ----------------------------------------------------------------


def test_default_config_loads():
    config = load_config()
    assert config.model.adstock == "geometric"
    assert config.budget.bound_fraction == pytest.approx(0.30)
    assert config.sampler.nuts_sampler == "nutpie"


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "mmm.yaml"
    path.write_text(yaml.safe_dump({"channels": ["a"], "sampler": {"drawz": 10}}))
    with pytest.raises(ConfigError, match=r"sampler: unknown key\(s\) \['drawz'\]") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"model.adstock: expected one of .*got 'hyperbolic'"):
        load_config(channels=["a"], model={"adstock": "hyperbolic"})
    with pytest.raises(ConfigError, match=r"sampler.draws: expected int, got 'many'"):
        load_config(channels=["a"], sampler={"draws": "many"})


def test_max_draws_is_checked():
    assert load_config(channels=["a"], sampler={"max_draws": None}).sampler.max_draws is None
    with pytest.raises(ConfigError, match=r"sampler.max_draws: must be >= sampler.draws \(500\)"):
        load_config(channels=["a"], sampler={"draws": 500, "max_draws": 400})
    with pytest.raises(ConfigError, match=r"sampler.max_draws: expected int \| None, got 'lots'"):
        load_config(channels=["a"], sampler={"max_draws": "lots"})


def test_unconverged_fit_is_sampled_again_with_twice_the_draws(monkeypatch):
    """The loop around the sampler: R-hat/ESS short -> 2x draws (capped at max_draws),
    prior predictive from the first fit kept; divergences within the gate never resample."""
    from triangulate.mmm import diagnostics
    from triangulate.mmm.model import FittedMMM

    config = load_config(
        channels=["a"],
        sampler={"draws": 1000, "max_draws": 3000, "target_accept": 0.95},
        gate={"r_hat_max": 1.01, "ess_bulk_min": 400, "max_divergences": 10},
    )
    fits: list[tuple[int, bool]] = []

    def fake_fit(cfg, data, lift_tests=None, *, prior_predictive=True, progress=None):
        fits.append((cfg.sampler.draws, prior_predictive))
        prior = pd.DataFrame({"p": [1.0]}) if prior_predictive else None
        return FittedMMM(mmm=None, data=data, config=cfg, prior_predictive=prior)

    def run(numbers_by_draws):
        fits.clear()
        monkeypatch.setattr(diagnostics, "fit_mmm", fake_fit)
        monkeypatch.setattr(
            diagnostics, "convergence", lambda f: numbers_by_draws[f.config.sampler.draws]
        )
        return diagnostics.fit_until_converged(config, data="weekly")

    short = {"r_hat_max": 1.014, "ess_bulk_min": 840.0, "divergences": 0}
    low_ess = {"r_hat_max": 1.004, "ess_bulk_min": 300.0, "divergences": 0}
    good = {"r_hat_max": 1.004, "ess_bulk_min": 1800.0, "divergences": 3}

    fitted = run({1000: short, 2000: good})
    assert fits == [(1000, True), (2000, False)]
    assert fitted.config.sampler.draws == 2000
    assert fitted.prior_predictive is not None  # the first fit's check, kept
    assert fitted.convergence_attempts == [
        {"reason": "not_converged", "draws": 1000, "target_accept": 0.95, **short}
    ]

    fitted = run({1000: short, 2000: low_ess, 3000: short})  # capped at max_draws, then given up
    assert [d for d, _ in fits] == [1000, 2000, 3000]
    assert fitted.config.sampler.draws == 3000
    assert [a["draws"] for a in fitted.convergence_attempts] == [1000, 2000]

    fitted = run({1000: good})  # converged (divergences are the gate's, not a reason to resample)
    assert fits == [(1000, True)] and fitted.convergence_attempts == []

    config = load_config(channels=["a"], sampler={"draws": 1000, "max_draws": None})  # one fit
    fitted = run({1000: short})
    assert fits == [(1000, True)] and fitted.convergence_attempts == []


def test_divergent_fit_is_sampled_again_with_a_higher_target_accept(monkeypatch):
    """Divergences over the gate -> target_accept 1 - (1 - t) / 5, capped at
    max_target_accept, before any longer run; still divergent at the cap -> given up."""
    from triangulate.mmm import diagnostics
    from triangulate.mmm.model import FittedMMM

    config = load_config(
        channels=["a"],
        sampler={
            "draws": 1000,
            "max_draws": 2000,
            "target_accept": 0.95,
            "max_target_accept": 0.99,
        },
        gate={"r_hat_max": 1.01, "ess_bulk_min": 400, "max_divergences": 10},
    )
    fits: list[tuple[int, float]] = []

    def fake_fit(cfg, data, lift_tests=None, *, prior_predictive=True, progress=None):
        fits.append((cfg.sampler.draws, cfg.sampler.target_accept))
        return FittedMMM(mmm=None, data=data, config=cfg)

    diverging = {"r_hat_max": 1.03, "ess_bulk_min": 200.0, "divergences": 20}
    short = {"r_hat_max": 1.014, "ess_bulk_min": 840.0, "divergences": 1}
    good = {"r_hat_max": 1.004, "ess_bulk_min": 1800.0, "divergences": 0}

    def run(numbers):
        fits.clear()
        monkeypatch.setattr(diagnostics, "fit_mmm", fake_fit)
        monkeypatch.setattr(
            diagnostics,
            "convergence",
            lambda f: numbers[(f.config.sampler.draws, round(f.config.sampler.target_accept, 6))],
        )
        return diagnostics.fit_until_converged(config, data="weekly")

    fitted = run({(1000, 0.95): diverging, (1000, 0.99): short, (2000, 0.99): good})
    assert [(d, round(t, 6)) for d, t in fits] == [(1000, 0.95), (1000, 0.99), (2000, 0.99)]
    assert (fitted.config.sampler.draws, round(fitted.config.sampler.target_accept, 6)) == (
        2000,
        0.99,
    )
    assert [(a["reason"], a["draws"], round(a["target_accept"], 6)) for a in
            fitted.convergence_attempts] == [("divergences", 1000, 0.95), ("not_converged", 1000, 0.99)]  # fmt: skip
    assert fitted.convergence_attempts[0]["divergences"] == 20

    fitted = run({(1000, 0.95): diverging, (1000, 0.99): diverging})  # at the cap: given up
    assert [round(t, 6) for _, t in fits] == [0.95, 0.99]
    assert [a["reason"] for a in fitted.convergence_attempts] == ["divergences"]


@pytest.mark.slow
def test_a_divergent_world_is_retried_and_recorded(tmp_path):
    """A small world that diverges at target_accept 0.6 (18 divergences of 200 draws on the
    machine that wrote this test): sampled again at 0.92, run.json says so, the gate passes."""
    from triangulate.mmm.model import load_fitted
    from triangulate.mmm.run import run_mmm
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=40, n_channels=2, seed=3, l_max=2, noise=0.01)
    config = load_config(
        channels=["ch1", "ch2"],
        controls=[],
        model={"l_max": 2, "yearly_seasonality": 0, "trend": False},
        sampler={"chains": 2, "draws": 100, "tune": 100, "seed": 1, "prior_predictive_draws": 50,
                 "target_accept": 0.6, "max_target_accept": 0.99},
        gate={"r_hat_max": 1.2, "ess_bulk_min": 10, "max_divergences": 3, "holdout_weeks": 0},
    )  # fmt: skip
    run = run_mmm(weekly, config, "div", artifacts_dir=tmp_path, budget=False)
    attempts = run.fitted.convergence_attempts
    assert attempts and attempts[0]["reason"] == "divergences"
    assert attempts[0]["target_accept"] == pytest.approx(0.6)
    assert attempts[0]["divergences"] > 3
    assert all(a["reason"] == "divergences" for a in attempts)
    assert run.fitted.config.sampler.target_accept == pytest.approx(1 - 0.4 / 5 ** len(attempts))
    assert run.gate.divergences <= 3 and run.gate.passed, run.gate.describe()
    saved = json.loads((tmp_path / "mmm" / "div" / "run.json").read_text())
    assert saved["convergence_attempts"] == json.loads(json.dumps(attempts))
    assert saved["config"]["sampler"]["target_accept"] == run.fitted.config.sampler.target_accept
    assert (
        load_fitted(tmp_path / "mmm" / "div").convergence_attempts == saved["convergence_attempts"]
    )


def test_max_target_accept_is_checked():
    assert load_config(channels=["a"]).sampler.max_target_accept == pytest.approx(0.99)
    with pytest.raises(ConfigError, match=r"sampler.max_target_accept: must be in"):
        load_config(channels=["a"], sampler={"target_accept": 0.95, "max_target_accept": 0.9})
    with pytest.raises(ConfigError, match=r"max_target_accept: expected float \| None"):
        load_config(channels=["a"], sampler={"max_target_accept": "high"})


def test_missing_channel_is_named(reference_frame):
    from triangulate.mmm.model import prepare_weekly

    config = reference_config(channels=["x1", "x2", "tv"])
    with pytest.raises(
        ConfigError, match=r"channel 'tv' is missing: expected a column 'spend_tv' or 'tv'"
    ):
        prepare_weekly(reference_frame, config, source="ref.csv")


def test_bad_rows_are_named(reference_frame):
    from triangulate.mmm.model import prepare_weekly

    config = reference_config()
    negative = reference_frame.copy()
    negative.loc[17, "x2"] = -1.0
    with pytest.raises(ConfigError, match=r"ref.csv: row 17: spend column 'x2' is negative"):
        prepare_weekly(negative, config, source="ref.csv")
    gap = reference_frame.drop(index=40)  # 2019-01-07 is missing
    with pytest.raises(ConfigError, match=r"weeks must be 7 days apart; 2018-12-31 -> 2019-01-14"):
        prepare_weekly(gap, config, source="ref.csv")


def test_spend_columns_and_geo_sum():
    """``spend_<channel>`` columns are found, and geos are summed for the national model."""
    from triangulate.mmm.model import prepare_weekly

    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "week_start": weeks,
                    "geo": g,
                    "net_revenue": 100.0 + i,
                    "spend_tv": 1.0 + i,
                    "control_price": 2.0 * (i + 1) + np.arange(30) % 2,
                }
            )
            for i, g in enumerate(["A", "B"])
        ]
    )
    data = prepare_weekly(frame, load_config(channels=["tv"], controls=["price"]))
    assert len(data.frame) == 30
    assert data.frame["y"].iloc[0] == pytest.approx(201.0)
    assert data.frame["tv"].iloc[0] == pytest.approx(3.0)
    # controls are averaged over geos (3.0 / 4.0 alternating), centered on their mean (3.5),
    # then divided by their max absolute deviation (0.5)
    assert data.control_centers["price"] == pytest.approx(3.5)
    assert data.control_scales["price"] == pytest.approx(0.5)
    assert data.frame["price"].iloc[0] == pytest.approx(-1.0)
    assert data.frame["price"].iloc[1] == pytest.approx(1.0)


def test_controls_default_to_the_control_columns_of_the_table():
    """mmm.yaml names no controls: the MMM fits every control_<name> column it finds (the
    mart has one per control the brand landed, or none); a list selects, [] turns them off."""
    from triangulate.mmm.model import prepare_weekly

    assert "controls" not in yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    frame = pd.DataFrame({
        "week_start": weeks, "net_revenue": 100.0 + np.arange(30), "spend_tv": 1.0,
        "control_holiday": np.arange(30) % 2, "control_price": 1.0 + np.arange(30) % 3,
    })  # fmt: skip
    assert prepare_weekly(frame, load_config(channels=["tv"])).controls == ("holiday", "price")
    assert prepare_weekly(frame, load_config(channels=["tv"], controls=["price"])).controls == (
        "price",
    )
    assert prepare_weekly(frame, load_config(channels=["tv"], controls=[])).controls == ()
    bare = frame.drop(columns=["control_holiday", "control_price"])
    assert prepare_weekly(bare, load_config(channels=["tv"])).controls == ()


def test_spend_share_prior_formula():
    from triangulate.mmm.model import WeeklyData, spend_share_beta_sigma

    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=4, freq="W-MON"),
            "a": [3.0, 3, 3, 3],
            "b": [1.0, 1, 1, 1],
            "y": [2.0, 4, 4, 6],
        }
    )
    data = WeeklyData(frame, ("a", "b"), (), {}, geo=False)
    sigma = spend_share_beta_sigma(data, total_sigma=2.0)
    r = 4.0 / 6.0  # mean(y) / max(y)
    assert sigma["a"] == pytest.approx(2.0 * r * (0.75 + 0.5) / 2)
    assert sigma["b"] == pytest.approx(2.0 * r * (0.25 + 0.5) / 2)


def test_mape():
    from triangulate.mmm.diagnostics import mape

    assert mape(np.array([100.0, 200.0, 0.0]), np.array([110.0, 180.0, 5.0])) == pytest.approx(0.10)


def test_lift_tests_hook_adds_likelihood(reference_frame):
    from triangulate.mmm.model import build_mmm, prepare_weekly

    config = reference_config()
    data = prepare_weekly(reference_frame, config)
    lift = pd.DataFrame(
        {"channel": ["x1"], "x": [0.3], "delta_x": [0.1], "delta_y": [400.0], "sigma": [50.0]}
    )
    mmm = build_mmm(config, data, lift_tests=lift)
    assert "lift_measurements" in mmm.model.named_vars
    with pytest.raises(ConfigError, match=r"unknown channel\(s\) \['radio'\]"):
        build_mmm(config, data, lift_tests=lift.assign(channel="radio"))


# --- fitting ---------------------------------------------------------------------


def test_reference_roas_inside_hdi(reference_fit, reference_frame):
    """The true ROAS (from the ground-truth contributions) lies in the 94 % HDI."""
    from triangulate.mmm.outputs import channel_summary

    truth = pd.read_csv(REFERENCE / "ground_truth_contributions.csv")
    summary = channel_summary(reference_fit, "ref").set_index("channel")
    for channel in ("x1", "x2"):
        true_roas = truth[f"{channel}_contribution"].sum() / reference_frame[channel].sum()
        row = summary.loc[channel]
        assert row["roas_hdi_low"] <= true_roas <= row["roas_hdi_high"], (
            channel,
            true_roas,
            row.to_dict(),
        )
        assert row["spend"] == pytest.approx(reference_frame[channel].sum())
        # diminishing returns: the marginal ROAS is below the average ROAS
        assert 0 < row["mroas"] < row["roas"]


def test_weekly_contributions_add_up(reference_fit):
    from triangulate.mmm.diagnostics import fitted_national_revenue
    from triangulate.mmm.outputs import WEEKLY_CONTRIBUTION_COLUMNS, weekly_contributions

    weekly = weekly_contributions(reference_fit, "ref")
    assert list(weekly.columns) == WEEKLY_CONTRIBUTION_COLUMNS
    assert set(weekly["component_kind"]) == {
        "channel",
        "control",
        "baseline",
        "trend",
        "seasonality",
    }
    total = weekly.groupby("week_start")["contribution"].sum().to_numpy()
    np.testing.assert_allclose(total, fitted_national_revenue(reference_fit).to_numpy(), rtol=1e-6)


def test_response_curves_are_increasing(reference_fit):
    from triangulate.mmm.outputs import RESPONSE_CURVE_COLUMNS, response_curves

    curves = response_curves(reference_fit, "ref")
    assert list(curves.columns) == RESPONSE_CURVE_COLUMNS
    for _, curve in curves.groupby("channel"):
        assert curve["response"].iloc[0] == pytest.approx(0.0)
        assert (np.diff(curve["response"]) > 0).all()
        assert (curve["response_hdi_low"] <= curve["response"]).all()
        assert (curve["response"] <= curve["response_hdi_high"]).all()


def test_save_load_round_trip(reference_fit, tmp_path):
    from triangulate.mmm.model import load_fitted, save_fitted
    from triangulate.mmm.outputs import channel_summary

    run_dir = save_fitted(reference_fit, tmp_path / "mmm" / "run-1")
    loaded = load_fitted(run_dir)
    assert loaded.config == reference_fit.config
    assert loaded.data.control_scales == reference_fit.data.control_scales
    np.testing.assert_allclose(
        loaded.mmm.idata.posterior["saturation_beta"].values,
        reference_fit.mmm.idata.posterior["saturation_beta"].values,
    )
    before = channel_summary(reference_fit, "r").drop(columns=["mroas"])
    after = channel_summary(loaded, "r").drop(columns=["mroas"])
    pd.testing.assert_frame_equal(before, after)


def test_gate_refuses_absurdly_short_fit(reference_frame, tmp_path):
    """tune=5, draws=5 (then 10, 20: max_draws): R-hat and ESS still fail, no tables,
    GateFailed carries the numbers, and the saved run lists the shorter attempts. (The
    divergence gate is opened here: this test is about the draws; divergences have theirs.)"""
    from triangulate.mmm.diagnostics import GateFailed
    from triangulate.mmm.model import load_fitted
    from triangulate.mmm.run import publishable_tables, run_mmm

    config = reference_config(
        sampler={"chains": 2, "draws": 5, "tune": 5, "max_draws": 20},
        gate={"r_hat_max": 1.01, "ess_bulk_min": 400, "holdout_weeks": 0, "max_divergences": 1000},
    )
    run = run_mmm(reference_frame, config, "short", artifacts_dir=tmp_path, budget=False)
    assert run.fitted.config.sampler.draws == 20
    assert run.fitted.mmm.idata.posterior.sizes["draw"] == 20
    assert [a["draws"] for a in run.fitted.convergence_attempts] == [5, 10]
    assert load_fitted(tmp_path / "mmm" / "short").convergence_attempts == (
        run.fitted.convergence_attempts
    )
    assert not run.gate.passed
    assert run.tables == {}
    with pytest.raises(GateFailed) as info:
        publishable_tables(run)
    message = str(info.value)
    assert f"ess_bulk_min={run.gate.ess_bulk_min:.0f}" in message
    assert "ess_bulk_min" in " ".join(run.gate.failures)
    assert run.gate.ess_bulk_min < 400
    diagnostics = run.diagnostics
    assert not diagnostics["published"].iloc[0]
    assert (tmp_path / "mmm" / "short" / "model.nc").exists()


# --- sampling progress (issue 20) ---------------------------------------------------
def test_progress_line_and_eta():
    from triangulate.mmm.run import progress_line

    assert progress_line(2_400, 12_000, 70.0) == (
        "sampling: 2,400/12,000 draws (20%), 1m10s elapsed, ETA 4m40s"
    )  # ETA = elapsed * (total - done) / done = 70 * 9,600 / 2,400 s
    assert progress_line(12_000, 12_000, 3_725.0) == (
        "sampling: 12,000/12,000 draws (100%), 1h02m05s elapsed, ETA 0s"
    )
    assert progress_line(0, 4_000, 2.0) == "sampling: 0/4,000 draws (0%), 2s elapsed, ETA unknown"
    assert progress_line(3_999, 4_000, 59.4).startswith("sampling: 3,999/4,000 draws (99%), 59s")


def test_progress_printer_throttles_and_always_prints_the_end(monkeypatch):
    from triangulate.mmm import run as mmm_run

    clock = iter([0.0, 1.0, 16.0, 17.0, 17.5])
    monkeypatch.setattr(mmm_run.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    report = mmm_run.progress_printer(lines.append, every_s=15.0)
    for done in (100, 200, 300, 400, 1_000):  # at t = 0, 1, 16, 17 and the end
        report(done, 1_000, float(done))
    assert [line.split(" draws")[0] for line in lines] == [
        "sampling: 100/1,000",
        "sampling: 300/1,000",
        "sampling: 1,000/1,000",
    ]


def test_fit_reports_sampling_progress(reference_frame, monkeypatch):
    """A real (tiny) fit through ``run_mmm``: the hook sees nutpie's draws, tuning
    included, all chains together, counting up to the total, for every run sampled (a
    run not converged at 100 draws is sampled again with 200)."""
    from triangulate.mmm import model
    from triangulate.mmm.run import run_mmm

    monkeypatch.setattr(model, "PROGRESS_EVERY_S", 0.0)  # every callback of nutpie's
    config = reference_config(
        sampler={"draws": 100, "tune": 100, "max_draws": 200, "prior_predictive_draws": 50}
    )
    calls: list[tuple[int, int, float]] = []
    run = run_mmm(reference_frame, config, "progress", budget=False,
                  progress=lambda done, total, elapsed: calls.append((done, total, elapsed)))  # fmt: skip
    assert calls, "the progress hook was never called"
    runs: list[list[tuple[int, int, float]]] = []
    for call in calls:  # a new run starts where the count goes back
        if not runs or call[0] <= runs[-1][-1][0]:
            runs.append([])
        runs[-1].append(call)
    sampled = [a["draws"] for a in run.fitted.convergence_attempts]
    sampled.append(run.fitted.config.sampler.draws)
    # one run of chains x (tune + draws) per run sampled
    assert [r[0][1] for r in runs] == [2 * (100 + draws) for draws in sampled]
    for calls_of_run in runs:
        done = [c[0] for c in calls_of_run]
        assert {c[1] for c in calls_of_run} == {calls_of_run[0][1]}
        assert done[-1] == calls_of_run[0][1], calls_of_run
        assert all(b[2] >= a[2] >= 0 for a, b in itertools.pairwise(calls_of_run))
    assert max(len(r) for r in runs) >= 2, runs
