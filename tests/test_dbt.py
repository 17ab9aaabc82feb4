"""The dbt project on the small simulated world: marts against the simulator's truth.

The world is built once per session (tests/dbt_fixtures.py): a first full build without
the last day of events and payments, then that day arrives and ``dbt build`` runs
incrementally. Every comparison below is against numbers the simulator drew, not against
numbers the models computed.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tests import dbt_fixtures
from tests.dbt_fixtures import DbtWorld, world_tools

dbt_world = dbt_fixtures.dbt_world  # the session fixture, registered in this module

CENT = 0.005  # "to the cent": truth spend is rounded to 4 decimals per week x geo


def _truth(world: DbtWorld, name: str) -> pd.DataFrame:
    return pd.read_csv(world.world / "truth" / name, dtype={"geo": str})


def _query(world: DbtWorld, sql: str) -> pd.DataFrame:
    with world.connect() as conn:
        return conn.execute(sql).df()


def test_the_held_back_day_arrived_as_an_incremental_load(dbt_world: DbtWorld) -> None:
    assert dbt_world.held_back["events"] > 0 and dbt_world.held_back["webhooks/stripe"] > 0
    assert dbt_world.tail_rows["raw.segment_events"] == dbt_world.held_back["events"]
    assert dbt_world.tail_rows["raw.stripe_events"] == dbt_world.held_back["webhooks/stripe"]


def test_spend_per_channel_and_week_equals_the_simulated_spend(dbt_world: DbtWorld) -> None:
    truth = _truth(dbt_world, "weekly_incremental_revenue.csv")
    truth = (
        truth[truth["component"] != "baseline"].groupby(["week_start", "component"])["spend"].sum()
    )
    mart = _query(
        dbt_world,
        "select cast(week_start as varchar) as week_start, channel as component, "
        "cast(sum(spend) as double) as spend from marts.fct_weekly_channel_spend group by all",
    ).set_index(["week_start", "component"])["spend"]
    both = pd.concat({"truth": truth, "mart": mart}, axis=1).fillna(0.0)
    assert (both["truth"] > 0).sum() > 500  # every paid channel, most weeks
    worst = (both["truth"] - both["mart"]).abs().sort_values()
    assert worst.iloc[-1] < CENT, (
        f"spend differs from the truth, worst rows:\n{both.loc[worst.index[-5:]]}"
    )


def test_spend_per_geo_matches_where_platforms_report_geos(dbt_world: DbtWorld) -> None:
    truth = _truth(dbt_world, "weekly_incremental_revenue.csv")
    truth = truth[truth["component"].isin(["meta", "google_search_brand", "tv"])]
    truth = truth.groupby(["week_start", "geo", "component"])["spend"].sum()
    mart = _query(
        dbt_world,
        "select cast(week_start as varchar) as week_start, geo, channel as component, cast(spend as double) as spend "
        "from marts.fct_weekly_channel_spend where channel in ('meta', 'google_search_brand', 'tv')",
    ).set_index(["week_start", "geo", "component"])["spend"]
    both = pd.concat({"truth": truth, "mart": mart}, axis=1).fillna(0.0)
    assert (both["truth"] - both["mart"]).abs().max() < CENT


def test_weekly_net_revenue_equals_the_truth_gross_minus_refunds(dbt_world: DbtWorld) -> None:
    truth = (
        _truth(dbt_world, "weekly_revenue.csv")
        .groupby("week_start")[["orders", "gross_revenue", "refunds", "net_revenue"]]
        .sum()
    )
    mart = _query(
        dbt_world,
        "select cast(week_start as varchar) as week_start, sum(orders) as orders, "
        "cast(sum(gross_revenue) as double) as gross_revenue, cast(sum(refunds) as double) as refunds, "
        "cast(sum(net_revenue) as double) as net_revenue from marts.fct_weekly_revenue group by all",
    ).set_index("week_start")
    assert list(mart.index.sort_values()) == list(truth.index.sort_values())
    assert (mart["orders"] == truth.loc[mart.index, "orders"]).all()
    for column in ["gross_revenue", "refunds", "net_revenue"]:
        diff = (mart[column] - truth.loc[mart.index, column]).abs().max()
        assert diff < 0.01, f"{column} differs from the truth by up to {diff}"
    assert truth["refunds"].sum() > 0  # refunds exist, so netting them is tested


def test_each_order_appears_once_despite_duplicate_and_multi_event_delivery(
    dbt_world: DbtWorld,
) -> None:
    truth = _truth(dbt_world, "orders.csv")
    with dbt_world.connect() as conn:
        deliveries = conn.execute("select count(*) from raw.stripe_events").fetchone()[0]
        events = conn.execute("select count(*) from staging.stg_stripe__events").fetchone()[0]
        orders = conn.execute(
            "select order_id, geo, cast(gross_revenue as double) as gross from marts.fct_orders"
        ).df()
    assert deliveries > events > 3 * len(truth)  # duplicates and several events per order
    assert orders["order_id"].is_unique
    assert set(orders["order_id"]) == set(truth["order_id"])
    merged = orders.merge(truth, on="order_id", suffixes=("", "_truth"))
    assert (merged["geo"] == merged["geo_truth"]).all()  # postal code -> geo
    assert (
        merged["gross"] - merged["gross_usd"]
    ).abs().max() < 0.0001  # FX at the order day's rate


def test_journeys_match_the_tracked_conversions(dbt_world: DbtWorld) -> None:
    """Every tracked converter sends Order Completed from the converting session's device,
    so the expected count is exact (tolerance 0); untracked orders have no journey."""
    tracking = json.loads((dbt_world.world / "truth" / "tracking.json").read_text())
    truth = _truth(dbt_world, "orders.csv")
    journeys = _query(
        dbt_world, "select order_id, path, touch_count from marts.fct_conversion_journeys"
    )
    assert len(journeys) == tracking["tracked_conversions"]
    assert set(journeys["order_id"]) == set(truth.loc[truth["tracked"], "order_id"])
    assert (journeys["touch_count"] == journeys["path"].str.count(" > ") + 1).all()


def test_paths_reflect_how_people_arrived(dbt_world: DbtWorld) -> None:
    """Brand-search-caused orders always arrive through branded search (simulator's
    arrival table), so their last touch is google_search_brand."""
    truth = _truth(dbt_world, "orders.csv")
    brand = truth.loc[(truth["cause"] == "google_search_brand") & truth["tracked"], "order_id"]
    journeys = _query(
        dbt_world, "select order_id, path from marts.fct_conversion_journeys"
    ).set_index("order_id")
    last = journeys.loc[brand, "path"].str.split(" > ").str[-1]
    assert len(last) > 20
    assert (last == "google_search_brand").mean() > 0.95


def test_touch_types_follow_the_tracking(dbt_world: DbtWorld) -> None:
    touches = _query(
        dbt_world,
        "select touch_type, channel, click_id_parameter, referrer_host, utm_medium, session_id "
        "from marts.fct_touchpoints",
    )
    views = touches[touches["touch_type"] == "view"]
    assert len(views) > 0 and views["session_id"].isna().all()
    assert (touches.loc[touches["click_id_parameter"].notna(), "touch_type"] == "click").all()
    assert (
        (
            touches.loc[touches["utm_medium"] == "email", ["touch_type", "channel"]]
            == ["click", "email"]
        )
        .all()
        .all()
    )
    organic = touches[touches["channel"] == "organic"]
    assert len(organic) > 0 and organic["referrer_host"].str.contains("google").all()
    assert (organic["touch_type"] == "visit").all()
    direct = touches[touches["channel"] == "direct"]
    assert direct["referrer_host"].isna().all() and (direct["touch_type"] == "visit").all()


def test_mmm_weekly_input_is_a_dense_zero_filled_panel(dbt_world: DbtWorld) -> None:
    panel = _query(dbt_world, "select * from marts.mmm_weekly_input")
    params = json.loads((dbt_world.world / "truth" / "parameters.json").read_text())
    assert len(panel) == 156 * len(params["geos"])
    assert set(panel["geo"]) == set(params["geos"]) and "ALL" not in set(panel["geo"])
    spend_columns = [c for c in panel.columns if c.startswith("spend_")]
    assert sorted(spend_columns) == sorted(f"spend_{c}" for c in params["channels"])
    assert panel[spend_columns].notna().all().all()
    assert (
        panel["spend_tiktok"].astype(float) == 0
    ).sum() > 0  # tiktok launched in year two: zero-filled
    # national controls are broadcast: one value per week whatever the geo
    assert panel.groupby("week_start")["control_price_index"].nunique().max() == 1
    truth = _truth(dbt_world, "weekly_incremental_revenue.csv")
    for channel in params["channels"]:
        expected = truth.loc[truth["component"] == channel, "spend"].sum()
        assert abs(panel[f"spend_{channel}"].astype(float).sum() - expected) < 0.01 * 156


def test_emails_never_leave_staging_in_clear(dbt_world: DbtWorld) -> None:
    with dbt_world.connect() as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('staging', 'intermediate', 'marts') and data_type = 'VARCHAR'"
        ).fetchall()
        assert len(columns) > 50
        leaks = [
            f"{s}.{t}.{c}"
            for s, t, c in columns
            if conn.execute(
                f'select count(*) from {s}."{t}" where "{c}" like \'%@%.%\''
            ).fetchone()[0]
        ]
        # the raw layer does hold them (so the check above can find them)
        assert conn.execute(
            "select count(*) from raw.stripe_events where body like '%@example.com%'"
        ).fetchone()[0]
    assert leaks == []


@pytest.mark.slow
def test_incremental_build_equals_a_full_refresh(dbt_world: DbtWorld, tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(dbt_world.warehouse, home / "warehouse.duckdb")
    world_tools.run_dbt(["run", "--full-refresh"], home)
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(f"attach '{dbt_world.warehouse}' as incremental (read_only)")
        models = [
            "staging.stg_segment__events", "staging.stg_stripe__events", "intermediate.int_sessionized_visits",
            "intermediate.int_unioned_touches", "marts.fct_touchpoints", "marts.fct_journey_touches",
            "marts.fct_conversion_journeys",
            "marts.fct_orders", "marts.mmm_weekly_input",
        ]  # fmt: skip
        for model in models:
            full = conn.execute(f"select count(*) from {model}").fetchone()[0]
            differ = conn.execute(
                f"select count(*) from ((select * from {model} except all select * from incremental.{model}) "
                f"union all (select * from incremental.{model} except all select * from {model}))"
            ).fetchone()[0]
            assert full > 0 and differ == 0, (
                f"{model}: {differ} rows differ between incremental and full refresh"
            )


@pytest.mark.slow
def test_a_platform_geo_that_does_not_map_fails_the_build_by_name(
    dbt_world: DbtWorld, tmp_path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(dbt_world.warehouse, home / "warehouse.duckdb")
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            "insert into raw.meta_insights select date_start, date_stop, account_id, account_currency, campaign_id, "
            "campaign_name, spend, impressions, clicks, 'Atlantis', payload, 'ads/meta/extra.json', 1, now() "
            "from raw.meta_insights limit 1"
        )
    with pytest.raises(world_tools.DbtError) as failure:
        world_tools.run_dbt(["build", "--select", "+fct_daily_channel_spend"], home)
    assert "Failure in test relationships_fct_daily_channel_spend_geo" in str(failure.value)


@pytest.mark.slow
def test_docs_generate(dbt_world: DbtWorld, tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(dbt_world.warehouse, home / "warehouse.duckdb")
    world_tools.run_dbt(["docs", "generate"], home)
    catalog = json.loads((home / "dbt_run" / "target" / "catalog.json").read_text())
    assert "model.triangulate.fct_conversion_journeys" in catalog["nodes"]
