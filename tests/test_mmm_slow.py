"""Bayesian MMM end to end (slow): the CLI on bring-your-own data, and the geo model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

REFERENCE = Path(__file__).resolve().parent / "data" / "mmm_example"  # source: its README

pytestmark = pytest.mark.slow


def test_cli_fit_writes_every_table(tmp_path):
    """`triangulate mmm fit` on the reference CSV: holdout refit, gate, tables, budget plan."""
    from triangulate.cli import app

    config = tmp_path / "mmm.yaml"
    config.write_text(
        "channels: [placeholder]\n"
        "model: {trend: true, yearly_seasonality: 2}\n"
        "sampler: {chains: 2, draws: 300, tune: 300, seed: 3, prior_predictive_draws: 100}\n"
        "gate: {r_hat_max: 1.05, ess_bulk_min: 100, holdout_weeks: 13, mape_holdout_max: 0.25}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "mmm",
            "fit",
            "--weekly",
            str(REFERENCE / "mmm_example.csv"),
            "--date-column",
            "date_week",
            "--target-column",
            "y",
            "--channels",
            "x1,x2",
            "--controls",
            "event_1,event_2",
            "--config",
            str(config),
            "--out",
            str(out),
            "--run-id",
            "cli-run",
        ],
    )
    assert result.exit_code == 0, result.output
    expected = {
        "mmm_channel_summary": [
            "run_id",
            "channel",
            "spend",
            "contribution",
            "contribution_hdi_low",
            "contribution_hdi_high",
            "roas",
            "roas_hdi_low",
            "roas_hdi_high",
            "mroas",
        ],
        "mmm_weekly_contributions": ["run_id", "week_start", "component", "contribution"],
        "mmm_response_curves": [
            "run_id",
            "channel",
            "spend",
            "response",
            "response_hdi_low",
            "response_hdi_high",
        ],
        "mmm_diagnostics": [
            "run_id",
            "fitted_at",
            "r_hat_max",
            "ess_bulk_min",
            "divergences",
            "mape_in_sample",
            "mape_holdout",
            "published",
        ],
        "budget_plan": [
            "run_id",
            "channel",
            "current_spend",
            "recommended_spend",
            "expected_contribution_change",
        ],
    }
    for table, columns in expected.items():
        frame = pd.read_csv(out / f"{table}.csv")
        assert list(frame.columns[: len(columns)]) == columns, table
        assert (frame["run_id"] == "cli-run").all()
    diagnostics = pd.read_csv(out / "mmm_diagnostics.csv").iloc[0]
    assert diagnostics["published"]
    assert 0 < diagnostics["mape_holdout"] < 0.25
    plan = pd.read_csv(out / "budget_plan.csv").set_index("channel")
    # every channel within +/- 30 % of its current spend, its decision the direction of the move
    ratio = plan["recommended_spend"] / plan["current_spend"]
    assert ((ratio >= 0.7 - 1e-6) & (ratio <= 1.3 + 1e-6)).all()
    assert ((plan["decision"] == "scale") == (ratio > 1 + 1e-9)).all(), plan
    assert ((plan["decision"] == "shift_budget_away") == (ratio < 1 - 1e-9)).all(), plan
    assert (plan["plan"] == "total").all()  # mmm.yaml's default budget.mode
    summary = pd.read_csv(out / "budget_plan_summary.csv").set_index("plan")
    assert summary.loc["total", "recommended"] and not summary.loc["reallocate", "recommended"]
    # the fixed-total plan keeps the total; a move is made only where it pays in expectation
    realloc = summary.loc["reallocate"]
    assert realloc["planned_spend"] == pytest.approx(realloc["current_spend"], rel=1e-9)
    assert (summary["expected_value"] >= -1e-6).all(), summary
    assert "x1" in result.output and (out / "mmm" / "cli-run" / "model.nc").exists()


def test_geo_hierarchical_model_recovers_national_roas(tmp_path):
    """dims=("geo",) on long data: national ROAS of the synthetic world inside the HDI.

    The geo model's structure (issue 25): population scaling per geo (target / the geo's
    mean; spend / (geo size x national peak)), one adstock and saturation shape per
    channel shared by all geos, national betas, intercept and noise per geo. It mixes:
    R-hat and ESS are checked at these few draws, and it survives a save and load."""
    from triangulate.mmm.config import load_config
    from triangulate.mmm.diagnostics import convergence
    from triangulate.mmm.model import fit_mmm, load_fitted, prepare_weekly, save_fitted
    from triangulate.mmm.outputs import budget_plan, channel_summary, response_curves
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, true_roas = synthetic_weekly(n_weeks=104, n_channels=2, n_geos=4, seed=5)
    config = load_config(
        channels=["ch1", "ch2"],
        controls=[],
        model={"hierarchy": "geo", "trend": True, "yearly_seasonality": 1},
        sampler={"chains": 2, "draws": 300, "tune": 300, "seed": 5, "prior_predictive_draws": 100},
    )
    fitted = fit_mmm(config, prepare_weekly(weekly, config))
    posterior = fitted.mmm.idata.posterior
    for shape in ("adstock_alpha", "saturation_lam", "saturation_beta"):
        assert posterior[shape].dims == ("chain", "draw", "channel"), shape
    assert posterior["intercept_contribution"].dims == ("chain", "draw", "geo")
    assert posterior["y_sigma"].dims == ("chain", "draw", "geo")
    scales = fitted.mmm.scalers
    by_geo = weekly.groupby("geo")
    assert scales["_target"].to_series().to_numpy() == pytest.approx(
        by_geo["net_revenue"].mean().to_numpy()
    )
    size = by_geo["net_revenue"].mean() / by_geo["net_revenue"].mean().sum()
    peak = weekly.groupby("week_start")["spend_ch1"].sum().max()
    assert scales["_channel"].sel(channel="ch1").to_series().to_numpy() == pytest.approx(
        (size * peak).to_numpy()
    )
    numbers = convergence(fitted)
    assert numbers["r_hat_max"] < 1.05 and numbers["ess_bulk_min"] > 50, numbers
    assert numbers["divergences"] <= 5, numbers
    summary = channel_summary(fitted, "geo").set_index("channel")
    for channel, truth in true_roas.items():
        row = summary.loc[channel]
        assert row["roas_hdi_low"] <= truth <= row["roas_hdi_high"], (channel, truth, row.to_dict())
    assert summary["spend"].sum() == pytest.approx(
        weekly[["spend_ch1", "spend_ch2"]].to_numpy().sum()
    )
    assert len(response_curves(fitted, "geo")) == 2 * 41
    plan, plan_summary = budget_plan(fitted, "geo")
    assert set(plan["channel"]) == {"ch1", "ch2"}
    realloc = plan_summary.set_index("plan").loc["reallocate"]
    assert realloc["planned_spend"] == pytest.approx(realloc["current_spend"], rel=1e-9)
    loaded = load_fitted(save_fitted(fitted, tmp_path / "run"))
    again = channel_summary(loaded, "geo").set_index("channel")
    assert again["roas"].to_numpy() == pytest.approx(summary["roas"].to_numpy())
