"""Weekly refresh (issue 25): a warm-started refit from the last published posterior, the
cold fallback with its reason, and the week-over-week ROAS change table.

One tiny national world (2 channels, 1 control, 40 + 1 weeks, 2 chains x 150 draws): a
cold fit on the first 40 weeks, then the refit with the 41st, warm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from triangulate.mmm.config import ConfigError, load_config

TUNE, WARM_TUNE = 300, 60


def tiny_config(**overrides):
    base = {
        "channels": ["ch1", "ch2"],
        "controls": ["price"],
        "model": {"l_max": 2, "yearly_seasonality": 0, "trend": False},
        "sampler": {"chains": 2, "draws": 150, "tune": TUNE, "warm_tune": WARM_TUNE, "warm_draws": 100,
                    "seed": 5, "prior_predictive_draws": 50},
        "gate": {"r_hat_max": 1.1, "ess_bulk_min": 30, "max_divergences": 5,
                 "mape_in_sample_max": 0.5, "holdout_weeks": 0},
    }  # fmt: skip
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return load_config(**base)


@pytest.fixture(scope="module")
def weekly() -> pd.DataFrame:
    from triangulate.mmm.synthetic import synthetic_weekly

    frame, _ = synthetic_weekly(n_weeks=41, n_channels=2, seed=3, l_max=2, noise=0.02)
    frame["control_price"] = np.random.default_rng(0).normal(1.0, 0.05, len(frame))
    return frame


@pytest.fixture(scope="module")
def refresh_runs(weekly, tmp_path_factory):
    """Cold run ``w1`` on 40 weeks, then ``w2`` on 41 weeks refreshing it; every
    ``nutpie.sample`` call's compiled model and keyword arguments recorded per run."""
    import nutpie

    from triangulate.mmm.run import run_mmm

    artifacts = tmp_path_factory.mktemp("refresh")
    calls: list[tuple] = []
    original = nutpie.sample

    def spy(compiled, **kwargs):
        calls.append((compiled, kwargs))
        return original(compiled, **kwargs)

    config = tiny_config()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nutpie, "sample", spy)
        first = run_mmm(weekly.iloc[:-1], config, "w1", artifacts_dir=artifacts, budget=False)
        cold_calls = list(calls)
        calls.clear()
        second = run_mmm(
            weekly, config, "w2", artifacts_dir=artifacts, budget=False, previous_run_id="w1"
        )
    return {"first": first, "second": second, "cold": cold_calls, "warm": list(calls),
            "artifacts": artifacts, "config": config}  # fmt: skip


def test_the_first_run_is_cold_and_has_no_change_table(refresh_runs):
    from triangulate.mmm.refresh import ROAS_CHANGE_TABLE, ROAS_DRAWS_FILE

    first = refresh_runs["first"]
    assert first.start == "cold start: no previous published run"
    assert first.gate.passed, first.gate.describe()
    assert ROAS_CHANGE_TABLE not in first.tables
    assert (refresh_runs["artifacts"] / "mmm" / "w1" / ROAS_DRAWS_FILE).exists()
    ((compiled, kwargs),) = refresh_runs["cold"]  # holdout off: one fit
    assert kwargs["tune"] == TUNE
    assert not hasattr(compiled.initial_point_func, "previous_run_id")  # pymc's own start


def test_the_refresh_starts_from_the_previous_posterior_with_less_tuning(refresh_runs):
    import nutpie

    from triangulate.mmm.model import load_fitted

    second = refresh_runs["second"]
    assert second.start.startswith("warm start from run w1: each chain starts at one of its 300"), (
        second.start
    )
    assert second.previous_run_id == "w1"
    assert nutpie.compile_pymc_model.__name__ == "compile_pymc_model"  # put back
    ((compiled, kwargs),) = refresh_runs["warm"]
    assert kwargs["tune"] == WARM_TUNE < TUNE
    # each chain's start (nutpie calls initial_point_func with the chain's seed) is one of
    # the previous run's posterior draws, on the sampler's scale (log, log-odds, as is)
    post = load_fitted(refresh_runs["artifacts"] / "mmm" / "w1").mmm.idata.posterior
    model = second.fitted.mmm.model
    rvs = {rv.name: rv for rv in model.free_RVs}
    assert compiled.initial_point_func.previous_run_id == "w1"
    order = compiled.initial_point_func.variables  # the model's order, nutpie's too
    assert sorted(order) == sorted(rvs)
    starts = [compiled.initial_point_func(seed) for seed in (11, 12, 2**64 - 1)]
    assert len(starts[0]) == compiled.n_dim
    assert not np.array_equal(starts[0], starts[1])
    unconstrained = {None: lambda x: x, "log": np.log, "logodds": lambda x: np.log(x / (1 - x))}
    for start in starts:
        offset, found = 0, set()
        for rv in (rvs[name] for name in order):
            draws = post[rv.name].transpose("chain", "draw", ...).values
            draws = draws.reshape(-1, int(np.prod(draws.shape[2:], dtype=int)))
            transform = model.rvs_to_transforms.get(rv)
            scale = unconstrained[getattr(transform, "name", None) if transform else None]
            piece = start[offset : offset + draws.shape[1]]
            offset += draws.shape[1]
            matches = np.flatnonzero(np.isclose(scale(draws), piece, rtol=1e-9).all(axis=1))
            assert len(matches), rv.name
            found.add(int(matches[0]))
        assert offset == len(start) and len(found) == 1  # one draw, every variable of it
    assert second.fitted.timings["warm_tune"] == WARM_TUNE
    assert second.fitted.mmm.idata.posterior.sizes["draw"] == 100  # sampler.warm_draws
    assert second.fitted.config.sampler.draws == 100
    assert refresh_runs["first"].fitted.mmm.idata.posterior.sizes["draw"] == 150


def test_the_warm_refit_still_passes_the_gate(refresh_runs):
    second = refresh_runs["second"]
    assert second.gate.passed, second.gate.describe()
    assert second.gate.r_hat_max <= 1.1 and second.gate.divergences <= 5


def test_the_change_table_is_the_difference_of_the_two_runs_roas_draws(refresh_runs):
    from triangulate.contracts import TABLE_COLUMNS
    from triangulate.mmm.outputs import hdi
    from triangulate.mmm.refresh import ROAS_CHANGE_TABLE, load_roas_draws, roas_draws

    first, second = refresh_runs["first"], refresh_runs["second"]
    change = second.tables[ROAS_CHANGE_TABLE]
    assert tuple(change.columns) == TABLE_COLUMNS[ROAS_CHANGE_TABLE]
    assert list(change["channel"]) == ["ch1", "ch2"]
    assert set(change["run_id"]) == {"w2"} and set(change["previous_run_id"]) == {"w1"}
    before = roas_draws(first.fitted)
    after = roas_draws(second.fitted)
    saved = load_roas_draws(refresh_runs["artifacts"] / "mmm" / "w1")
    summary_1 = first.tables["measurement.mmm_channel_summary"].set_index("channel")
    summary_2 = second.tables["measurement.mmm_channel_summary"].set_index("channel")
    for row in change.itertuples():
        np.testing.assert_array_equal(saved[row.channel], before[row.channel])
        assert row.roas_previous == pytest.approx(summary_1.loc[row.channel, "roas"], rel=1e-12)
        assert row.roas == pytest.approx(summary_2.loc[row.channel, "roas"], rel=1e-12)
        assert row.roas_change == pytest.approx(row.roas - row.roas_previous, rel=1e-12)
        # 200 draws after, 300 before: draw i of one with draw i (mod 200) of the other
        low, high = hdi(after[row.channel][np.arange(300) % 200] - before[row.channel])
        assert (row.roas_change_hdi_low, row.roas_change_hdi_high) == pytest.approx((low, high))
        assert row.distinguishable == (low > 0 or high < 0)
        assert ("more than noise" if row.distinguishable else "no change beyond noise") in (
            row.verdict
        )


def test_a_changed_model_or_history_falls_back_to_cold_with_the_reason(refresh_runs, weekly):
    from triangulate.mmm.model import prepare_weekly
    from triangulate.mmm.refresh import plan_warm_start

    run_dir = refresh_runs["artifacts"] / "mmm" / "w1"

    def plan(config, frame=weekly):
        return plan_warm_start(config, prepare_weekly(frame, config), run_dir, "w1")

    warm, line = plan(tiny_config(model={"l_max": 3}))
    assert warm is None
    assert line == "cold start (previous run w1): the config changed: model.l_max 2 -> 3"
    warm, line = plan(tiny_config(channels=["ch1"]))
    assert warm is None and "the config changed: channels ['ch1', 'ch2'] -> ['ch1']" in line
    warm, line = plan(tiny_config(controls=[]))
    assert warm is None and "the controls changed: ['price'] -> []" in line
    restated = weekly.copy()
    restated.loc[5, "spend_ch2"] *= 1.5
    warm, line = plan(tiny_config(), restated)
    assert warm is None
    assert line.endswith("the data of a previous week changed: 'ch2' on 2022-02-07"), line
    warm, line = plan(tiny_config(), weekly.iloc[1:])
    assert warm is None and "not the previous fit's weeks plus new ones" in line
    warm, line = plan(tiny_config(sampler={"warm_start": False}))
    assert warm is None and line == "cold start: sampler.warm_start is off"
    # the sampler, gate and budget sections do not change the posterior: still warm
    warm, line = plan(tiny_config(sampler={"draws": 400}, gate={"holdout_weeks": 13}))
    assert warm is not None and warm.previous_run_id == "w1", line
    assert plan_warm_start(tiny_config(), None, run_dir.parent / "nope", "x")[0] is None


def test_warm_sample_kwargs_only_inside_the_block():
    from triangulate.mmm.refresh import WarmStart, warm_config, warm_sample_kwargs, warm_started

    config = tiny_config()
    warm = WarmStart("w1", {"x": np.zeros((4, 2))})
    assert warm_sample_kwargs(config) == {}
    with warm_started(warm):
        assert warm_sample_kwargs(config) == {"tune": WARM_TUNE}
        short = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, tune=20))
        assert warm_sample_kwargs(short) == {"tune": 20}  # never more than tune
        other = dataclasses.replace(
            config, sampler=dataclasses.replace(config.sampler, nuts_sampler="pymc")
        )
        assert warm_sample_kwargs(other) == {}
    assert warm_sample_kwargs(config) == {}
    assert warm_config(config, warm).sampler.draws == 100
    assert warm_config(config, None) is config
    unset = dataclasses.replace(
        config, sampler=dataclasses.replace(config.sampler, warm_draws=None)
    )
    assert warm_config(unset, warm) is unset
    with pytest.raises(ConfigError, match=r"sampler\.warm_draws"):
        tiny_config(sampler={"warm_draws": 0})
    with pytest.raises(ConfigError, match=r"sampler\.warm_tune"):
        tiny_config(sampler={"warm_tune": -1})


def test_previous_run_is_the_latest_published_of_the_same_kind():
    from triangulate.mmm.refresh import previous_run

    diagnostics = pd.DataFrame(
        {
            "run_id": ["a", "a-calibrated", "b", "c", "b-calibrated"],
            "fitted_at": pd.to_datetime(
                ["2026-11-23", "2026-11-23", "2026-11-30", "2026-12-07", "2026-11-30"]
            ),
            "published": [True, True, True, False, False],
        }
    )
    assert previous_run(diagnostics, "d") == "b"  # c failed its gate
    assert previous_run(diagnostics, "d-calibrated") == "a-calibrated"
    assert previous_run(diagnostics, "b") == "a"
    assert previous_run(diagnostics.iloc[:0], "d") is None


def test_paired_difference_and_a_drift_verdict():
    from triangulate.mmm.refresh import paired_difference, roas_change

    np.testing.assert_array_equal(
        paired_difference(np.array([5.0, 6, 7, 8]), np.array([1.0, 2])), [4, 4, 6, 6]
    )
    rng = np.random.default_rng(1)
    draws = {"tv": rng.normal(2.0, 0.05, 4000), "meta": rng.normal(1.0, 0.2, 4000)}
    previous = {
        "tv": rng.normal(1.5, 0.05, 4000),
        "meta": rng.normal(1.05, 0.2, 4000),
        "x": draws["tv"],
    }
    table = roas_change("r2", "r1", draws, previous).set_index("channel")
    assert list(table.index) == ["tv", "meta"]
    assert bool(table.loc["tv", "distinguishable"]) and table.loc["tv", "verdict"].startswith(
        "ROAS rose by 0.5"
    )
    assert not table.loc["meta", "distinguishable"]
    assert table.loc["meta", "verdict"].startswith("no change beyond noise: -0.0")


def test_the_change_table_is_a_run_table_of_ratios(tmp_path):
    """Published with the run: ROAS columns DOUBLE (no money), a ``latest_`` view."""
    import duckdb

    from triangulate.contracts import MONEY_COLUMNS, REFRESH_TABLES, TABLE_COLUMNS
    from triangulate.mmm.refresh import ROAS_CHANGE_TABLE, roas_change
    from triangulate.warehouse import RUN_TABLES, publish_run

    assert ROAS_CHANGE_TABLE in RUN_TABLES and ROAS_CHANGE_TABLE in REFRESH_TABLES
    assert ROAS_CHANGE_TABLE not in MONEY_COLUMNS
    rows = roas_change("r", "q", {"tv": np.array([1.0, 1.2])}, {"tv": np.array([0.9, 1.0])})
    diagnostics = pd.DataFrame(
        [["r", pd.Timestamp("2026-12-07"), 1.0, 500.0, 0, 0.05, 0.06, True]],
        columns=list(TABLE_COLUMNS["measurement.mmm_diagnostics"]),
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        publish_run(
            conn, "r", {ROAS_CHANGE_TABLE: rows, "measurement.mmm_diagnostics": diagnostics}
        )
        types = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'measurement' and table_name = 'mmm_roas_change'"
            ).fetchall()
        )
        latest = conn.execute(
            "select previous_run_id, roas_change from measurement.latest_mmm_roas_change"
        ).fetchall()
    assert types["roas"] == types["roas_change"] == types["roas_change_hdi_low"] == "DOUBLE"
    assert types["distinguishable"] == "BOOLEAN"
    assert latest == [("q", pytest.approx(0.15))]
