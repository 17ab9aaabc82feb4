"""The geo-hierarchical MMM's structure, built but not sampled (fast; issue 25).

Sampling and recovery on a small world: ``test_mmm_slow.test_geo_hierarchical_model_recovers_national_roas``."""

from __future__ import annotations

import pytest


def _built(geo_beta_sd: float):
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import build_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=60, n_channels=2, n_geos=3, seed=5)
    config = load_config(
        channels=["ch1", "ch2"],
        controls=[],
        model={"hierarchy": "geo"},
        priors={"geo_beta_sd": geo_beta_sd},
    )
    return weekly, build_mmm(config, prepare_weekly(weekly, config))


def _dims(mmm, name: str) -> tuple[str, ...]:
    return tuple(mmm.model.named_vars_to_dims.get(name, ()))


def test_geo_model_shares_shapes_and_betas_and_scales_by_geo_size():
    weekly, mmm = _built(0.0)
    free = {v.name for v in mmm.model.free_RVs}
    assert {"adstock_alpha", "saturation_lam", "saturation_beta"} <= free
    for name in ("adstock_alpha", "saturation_lam", "saturation_beta"):
        assert _dims(mmm, name) == ("channel",), name
    assert _dims(mmm, "intercept_contribution") == ("geo",)
    assert _dims(mmm, "y_sigma") == ("geo",)
    assert "channel_contribution_original_scale" not in mmm.model.named_vars
    mean = weekly.groupby("geo")["net_revenue"].mean()
    assert mmm.scalers["_target"].to_series().to_numpy() == pytest.approx(mean.to_numpy())
    peak = weekly.groupby("week_start")["spend_ch2"].sum().max()
    assert mmm.scalers["_channel"].sel(channel="ch2").to_series().to_numpy() == pytest.approx(
        (mean / mean.sum() * peak).to_numpy()
    )
    assert mmm.sampler_config["nuts_sampler_kwargs"] == {"low_rank_modified_mass_matrix": True}


def test_geo_beta_sd_pools_the_betas_non_centered():
    _, mmm = _built(0.2)
    free = {v.name for v in mmm.model.free_RVs}
    assert {
        "saturation_beta_raw_offset",
        "saturation_beta_raw_mu",
        "saturation_beta_raw_sigma",
    } <= free
    assert _dims(mmm, "saturation_beta_raw_offset") == ("geo", "channel")
    assert _dims(mmm, "saturation_lam") == ("channel",)


def test_geo_beta_sd_must_not_be_negative():
    from triangulate.mmm.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"priors\.geo_beta_sd"):
        load_config(priors={"geo_beta_sd": -0.1})
