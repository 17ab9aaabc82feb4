"""One owner of the journeys: the dbt model ``marts.fct_journey_touches`` assigns every
touch to its journey (lookback, click and view windows, previous order, non-converting
journeys); ``marts.fct_conversion_journeys`` (the mart's paths) and MTA both read that
assignment, so they agree touch for touch.

The warehouse is a DuckDB file holding hand-made upstream marts (``fct_touchpoints``,
``fct_orders``, with their contract types) and the real ``dbt build`` of the journey
models on top (their data tests included): one person with the issue's case, plus the
random world of tests/test_mta_warehouse.py (its channels differ from the case's).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.dbt_fixtures import world_tools
from tests.test_mta_warehouse import random_world
from triangulate.mta.engine import aggregated_paths_from_warehouse, attribute_from_warehouse

ORDER_AT = dt.datetime(2026, 3, 4, 15)  # a Wednesday
VIEW_WINDOW_DAYS = 1


def issue_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """An order with a google_search_brand click 2 days before it and a meta view 10 days
    before it: the view is inside the 30-day lookback but outside its 1-day view window."""
    touches = pd.DataFrame(
        {
            "touch_id": ["case-view", "case-click"],
            "person_key": ["user:case", "user:case"],
            "touched_at": [ORDER_AT - dt.timedelta(days=10), ORDER_AT - dt.timedelta(days=2)],
            "channel": ["meta", "google_search_brand"],
            "campaign": ["meta_prospecting", "brand_exact"],
            "touch_type": ["view", "click"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["case-order"],
            "person_key": ["user:case"],
            "converted_at": [ORDER_AT],
            "net_revenue": [80.0],
        }
    )
    return touches, orders


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``home/warehouse.duckdb`` with the upstream marts and the dbt-built journey marts."""
    home = tmp_path_factory.mktemp("journeys")
    case_touches, case_orders = issue_case()
    world_touches, world_orders = random_world(12)
    touches = pd.concat([case_touches, world_touches], ignore_index=True)
    orders = pd.concat(
        [case_orders, world_orders[["order_id", "person_key", "converted_at", "net_revenue"]]],
        ignore_index=True,
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute("create schema marts")
        conn.register("touch_input", touches)
        conn.register("order_input", orders)
        conn.execute(
            "create table marts.fct_touchpoints as select cast(touch_id as varchar) as touch_id, "
            "cast(person_key as varchar) as person_key, cast(touched_at as timestamp) as touched_at, "
            "cast(channel as varchar) as channel, cast(campaign as varchar) as campaign, "
            "cast(touch_type as varchar) as touch_type from touch_input"
        )
        conn.execute(
            "create table marts.fct_orders as select cast(order_id as varchar) as order_id, "
            "cast(person_key as varchar) as person_key, cast(converted_at as timestamp) as ordered_at, "
            "cast(net_revenue as numeric(28, 6)) as net_revenue from order_input"
        )
    world_tools.run_dbt(
        [
            "build",
            "--select",
            "fct_journey_touches",
            "fct_conversion_journeys",
            "--vars",
            json.dumps({"view_window_days": VIEW_WINDOW_DAYS}),
        ],
        home,
    )
    return home / "warehouse.duckdb"


def test_a_view_outside_its_window_is_in_neither_the_mart_path_nor_mta_credit(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        mart = conn.execute(
            "select path, touch_count, view_count from marts.fct_conversion_journeys "
            "where order_id = 'case-order'"
        ).fetchall()
        result = attribute_from_warehouse(conn, models=["first_touch", "linear"])
        paths = aggregated_paths_from_warehouse(conn)
    assert mart == [("google_search_brand", 1, 0)]
    credit = result["channel_credit"].groupby(["model", "channel"])["conversions"].sum()
    for model in ("first_touch", "linear"):
        assert credit.get((model, "google_search_brand"), 0.0) == pytest.approx(1.0)
        assert credit.get((model, "meta"), 0.0) == pytest.approx(0.0)
    # the view is not lost: it is a non-converting journey of its own (a Markov null)
    meta = paths[paths["path"] == "meta"]
    assert meta[["conversions", "nulls"]].sum().tolist() == [0.0, 1.0]


def test_the_mart_paths_are_the_converting_journeys_mta_reads(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        mart = conn.execute(
            "select path, count(*) as conversions, sum(cast(net_revenue as double)) as revenue "
            "from marts.fct_conversion_journeys group by path"
        ).df()
        paths = aggregated_paths_from_warehouse(conn)
    converting = paths[paths["conversions"] > 0]
    merged = mart.merge(
        converting, on="path", how="outer", suffixes=("_mart", "_mta"), indicator=True
    )
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert (merged["conversions_mart"] == merged["conversions_mta"]).all()
    assert merged["revenue_mart"].to_numpy() == pytest.approx(merged["revenue_mta"].to_numpy())
    assert len(mart) > 10  # the random world converts along many paths
