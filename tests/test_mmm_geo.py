"""The geo-hierarchical MMM (issue 25): its structure, built but not sampled (fast), and
the summaries of a tiny fit (2 chains x 100 draws, ~30 s): per chunk of draws as in one
go, and the per-geo table ``measurement.mmm_geo_channel_summary``.

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


def test_geo_intercept_sd_pools_the_intercepts_non_centered():
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import build_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=60, n_channels=2, n_geos=3, seed=5)
    config = load_config(
        channels=["ch1", "ch2"],
        controls=[],
        model={"hierarchy": "geo"},
        priors={"geo_intercept_sd": 0.2},
    )
    mmm = build_mmm(config, prepare_weekly(weekly, config))
    free = {v.name for v in mmm.model.free_RVs}
    assert {"intercept_contribution_mu", "intercept_contribution_sigma"} <= free
    assert _dims(mmm, "intercept_contribution_offset") == ("geo",)
    assert _dims(mmm, "intercept_contribution") == ("geo",)
    _, independent = _built(0.0)
    assert "intercept_contribution_sigma" not in {v.name for v in independent.model.free_RVs}


def test_population_scaling_divides_each_geo_by_its_population_share():
    """With population shares, a geo's target is scaled to revenue per head (its share of
    the population times the national mean weekly target) and its spend to spend per head
    against the national peak."""
    from triangulate.mmm.config import ConfigError, load_config
    from triangulate.mmm.model import build_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=60, n_channels=2, n_geos=3, seed=5)
    config = load_config(channels=["ch1", "ch2"], controls=[], model={"hierarchy": "geo"})
    data = prepare_weekly(weekly, config)
    data.population_share = {"G00": 2.0, "G01": 1.0, "G02": 1.0}  # normalized to 0.5/0.25/0.25
    mmm = build_mmm(config, data)
    total = weekly.groupby("geo")["net_revenue"].mean().sum()
    size = [0.5, 0.25, 0.25]
    assert mmm.scalers["_target"].to_series().to_numpy() == pytest.approx([s * total for s in size])
    peak = weekly.groupby("week_start")["spend_ch1"].sum().max()
    assert mmm.scalers["_channel"].sel(channel="ch1").to_series().to_numpy() == pytest.approx(
        [s * peak for s in size]
    )
    data.population_share = {"G00": 1.0, "G01": 1.0}
    with pytest.raises(ConfigError, match="no population for geo"):
        build_mmm(config, data)


def test_geo_beta_sd_must_not_be_negative():
    from triangulate.mmm.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"priors\.geo_beta_sd"):
        load_config(priors={"geo_beta_sd": -0.1})
    with pytest.raises(ConfigError, match=r"priors\.geo_intercept_sd"):
        load_config(priors={"geo_intercept_sd": -0.1})


# --- Summaries of a fitted geo model: chunks of draws, and the per-geo table -----------------


@pytest.fixture(scope="module")
def geo_fit():
    """A tiny geo fit (3 geos x 52 weeks x 2 channels, 2 chains x 100 draws): numbers, not
    recovery, are checked on it."""
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import fit_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=52, n_channels=2, n_geos=3, seed=5)
    config = load_config(
        channels=["ch1", "ch2"],
        controls=[],
        model={"hierarchy": "geo", "yearly_seasonality": 1},
        sampler={"chains": 2, "draws": 100, "tune": 100, "seed": 5},
    )
    return fit_mmm(config, prepare_weekly(weekly, config), prior_predictive=False)


def test_draw_slices_bound_every_chunk_and_cover_every_draw():
    from triangulate.mmm.outputs import SUMMARY_CHUNK_BYTES, draw_slices

    for chains, draws, max_draws in [(4, 2000, 768), (2, 100, 30), (2, 100, 1), (4, 10, 1000)]:
        slices = draw_slices(chains, draws, max_draws)
        assert all(chains * (s.stop - s.start) <= max(max_draws, chains) for s in slices)
        assert [i for s in slices for i in range(s.start, s.stop)] == list(range(draws))
    # the demo world's geo model: 768 draws of 156 weeks x 40 geos x 7 channels per chunk
    assert SUMMARY_CHUNK_BYTES // (8 * 156 * 40 * 7) == 768


def test_chunked_summaries_equal_the_one_shot_ones(geo_fit):
    from triangulate.mmm import outputs

    n_draws = 2 * 100
    assert outputs.draws_per_chunk(geo_fit) >= n_draws  # a tiny fit is one chunk: one shot
    one_shot = outputs.channel_summary(geo_fit, "r")
    chunked = outputs.channel_summary(geo_fit, "r", max_draws=30)
    numbers = one_shot.columns.drop(["run_id", "channel"])
    assert chunked[numbers].to_numpy() == pytest.approx(one_shot[numbers].to_numpy(), rel=1e-9)
    assert (chunked["channel"] == one_shot["channel"]).all()
    weekly = outputs.weekly_contributions(geo_fit, "r")
    weekly_chunked = outputs.weekly_contributions(geo_fit, "r", max_draws=30)
    assert weekly_chunked.drop(columns="contribution").equals(weekly.drop(columns="contribution"))
    assert weekly_chunked["contribution"].to_numpy() == pytest.approx(
        weekly["contribution"].to_numpy(), rel=1e-9, abs=1e-6
    )
    geo_one_shot = outputs.geo_channel_summary(geo_fit, "r")
    geo_chunked = outputs.geo_channel_summary(geo_fit, "r", max_draws=30)
    numbers = geo_one_shot.columns.drop(["run_id", "geo", "channel"])
    assert geo_chunked[numbers].to_numpy() == pytest.approx(
        geo_one_shot[numbers].to_numpy(), rel=1e-9
    )


def test_summaries_never_take_more_draws_at_once_than_a_chunk(geo_fit, monkeypatch):
    """Instrumented: every pymc-marketing call that materializes draws x weeks x geos x
    channels sees at most ``max_draws`` draws, and the full posterior is back afterwards."""
    from triangulate.mmm import outputs

    mmm = geo_fit.mmm
    full = mmm.idata
    seen: list[tuple[str, int]] = []

    def watched(name):
        original = getattr(mmm, name)

        def call(*args, **kwargs):
            posterior = mmm.idata.posterior
            seen.append((name, posterior.sizes["chain"] * posterior.sizes["draw"]))
            return original(*args, **kwargs)

        monkeypatch.setattr(mmm, name, call)

    for name in ("compute_counterfactual_contributions_dataset", "sample_posterior_predictive"):
        watched(name)
    outputs.channel_summary(geo_fit, "r", max_draws=30)
    outputs.geo_channel_summary(geo_fit, "r", max_draws=30)
    outputs.weekly_contributions(geo_fit, "r", max_draws=30)
    assert {name for name, _ in seen} == {
        "compute_counterfactual_contributions_dataset",
        "sample_posterior_predictive",
    }
    assert max(n for _, n in seen) <= 30
    forward = [n for name, n in seen if name == "sample_posterior_predictive"]
    assert sum(forward) == 200 and len(forward) == 7  # 15 draws per chain per chunk
    assert mmm.idata is full

    def fails():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        outputs._per_chunk(geo_fit, fails, max_draws=30)
    assert mmm.idata is full  # put back after a failure too


def test_geo_channel_summary_rows_add_up_to_the_national_summary(geo_fit):
    from triangulate.contracts import TABLE_COLUMNS
    from triangulate.mmm import outputs

    table = outputs.geo_channel_summary(geo_fit, "r")
    assert tuple(table.columns) == TABLE_COLUMNS["measurement.mmm_geo_channel_summary"]
    assert list(zip(table["geo"], table["channel"], strict=True)) == [
        (g, c) for g in ("G00", "G01", "G02") for c in ("ch1", "ch2")
    ]
    assert (table["run_id"] == "r").all()
    national = outputs.channel_summary(geo_fit, "r").set_index("channel")
    by_channel = table.groupby("channel")[["spend", "contribution"]].sum()
    assert by_channel["contribution"].to_numpy() == pytest.approx(
        national.loc[by_channel.index, "contribution"].to_numpy(), rel=1e-9
    )
    assert by_channel["spend"].to_numpy() == pytest.approx(
        national.loc[by_channel.index, "spend"].to_numpy(), rel=1e-12
    )
    for low, mean, high in (("contribution_hdi_low", "contribution", "contribution_hdi_high"),
                            ("roas_hdi_low", "roas", "roas_hdi_high")):  # fmt: skip
        assert (table[low] <= table[mean]).all() and (table[mean] <= table[high]).all(), mean
    assert table["roas"].to_numpy() == pytest.approx(
        (table["contribution"] / table["spend"]).to_numpy(), rel=1e-9
    )


def test_national_model_has_no_geo_table(monkeypatch):
    from types import SimpleNamespace

    from triangulate.contracts import TABLE_COLUMNS
    from triangulate.mmm import outputs, run

    national = SimpleNamespace(data=SimpleNamespace(geo=False))
    empty = outputs.geo_channel_summary(national, "r")
    assert empty.empty
    assert tuple(empty.columns) == TABLE_COLUMNS["measurement.mmm_geo_channel_summary"]
    for name in ("channel_summary", "weekly_contributions", "response_curves"):
        monkeypatch.setattr(outputs, name, lambda fitted, run_id, _name=name: _name)
    monkeypatch.setattr(outputs, "geo_channel_summary", lambda fitted, run_id: "geo")
    assert "measurement.mmm_geo_channel_summary" not in run.output_tables(
        national, "r", budget=False
    )
    geo = SimpleNamespace(data=SimpleNamespace(geo=True))
    assert run.output_tables(geo, "r", budget=False)["measurement.mmm_geo_channel_summary"] == "geo"


def test_geo_table_is_published_with_the_run_as_money(tmp_path):
    """Published in the run's transaction like the other MMM tables: money as DECIMAL, ROAS
    DOUBLE (empty where a geo had no spend), and a ``latest_`` view of the published run."""
    import duckdb
    import pandas as pd

    from triangulate.contracts import MONEY_TYPE, TABLE_COLUMNS
    from triangulate.warehouse import RUN_TABLES, publish_run

    table = "measurement.mmm_geo_channel_summary"
    assert table in RUN_TABLES
    columns = TABLE_COLUMNS[table]
    rows = pd.DataFrame(
        [["r", "G00", "tv", 100.0, 150.5, 10.0, 300.0, 1.505, 0.1, 3.0],
         ["r", "G01", "tv", 0.0, 0.0, 0.0, 0.0, float("nan"), float("nan"), float("nan")]],
        columns=list(columns),
    )  # fmt: skip
    diagnostics = pd.DataFrame(
        [["r", pd.Timestamp("2026-12-07"), 1.0, 500.0, 0, 0.05, 0.06, True]],
        columns=list(TABLE_COLUMNS["measurement.mmm_diagnostics"]),
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        publish_run(conn, "r", {table: rows, "measurement.mmm_diagnostics": diagnostics})
        types = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'measurement' and table_name = 'mmm_geo_channel_summary'"
            ).fetchall()
        )
        assert types["contribution"] == types["spend"] == MONEY_TYPE
        assert types["roas"] == "DOUBLE"
        latest = conn.execute(
            "select geo, roas from measurement.latest_mmm_geo_channel_summary order by geo"
        ).fetchall()
    assert latest[0] == ("G00", pytest.approx(1.505)) and latest[1][1] is None
