"""MTA pushed down to the warehouse: fixture tables in an in-memory DuckDB.

The fixtures are the marts upstream of the journeys (``fct_touchpoints``, ``fct_orders``);
the journey marts are built from them by the real dbt models' SQL (``fct_journey_touches``,
the one owner of the journey windows, and ``fct_conversion_journeys``; compiled once per
set of vars), exactly what MTA reads in the pipeline. The journey rules (lookback, click
and view windows, previous conversion, non-converting journeys split by silence) are
re-implemented here in plain Python, with the windows read from dbt_project.yml
(``triangulate.journeys``); the warehouse path must give the same credits as the
aggregated-path path fed with the journeys built that way.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.dbt_fixtures import world_tools
from triangulate.journeys import journey_windows
from triangulate.mta import engine
from triangulate.mta.engine import (
    ALL_MODELS,
    CAMPAIGN_CREDIT_COLUMNS,
    CHANNEL_CREDIT_COLUMNS,
    PATH_MODELS,
    aggregated_paths_from_warehouse,
    attribute_from_warehouse,
    attribute_paths,
    person_buckets,
)
from triangulate.mta.paths import aggregated_paths_frame

CHANNELS = ["search", "social", "email", "direct", "display"]
WINDOWS = journey_windows()
"""The journey windows as dbt_project.yml sets them (their one owner)."""
JOURNEY_MODELS = ["fct_journey_touches", "fct_conversion_journeys"]
_COMPILED: dict[str, dict[str, str]] = {}


def journey_models_sql(dbt_vars: dict | None = None) -> dict[str, str]:
    """The SQL of the dbt models that build the journeys, compiled by dbt with ``dbt_vars``
    (once per session per set of vars)."""
    key = json.dumps(dbt_vars or {}, sort_keys=True)
    if key not in _COMPILED:
        with tempfile.TemporaryDirectory() as home:
            _COMPILED[key] = world_tools.compiled_models_sql(JOURNEY_MODELS, Path(home), dbt_vars)
    return _COMPILED[key]


def create_tables(
    conn,
    touches: pd.DataFrame,
    orders: pd.DataFrame,
    schema: str = "marts",
    dbt_vars: dict | None = None,
) -> None:
    """``fct_touchpoints`` and ``fct_orders`` (``order_id, person_key, converted_at,
    net_revenue``) from the frames, then the journey marts built from them by the dbt
    models' own SQL, all in ``schema``."""
    conn.execute(f"create schema if not exists {schema}")
    conn.register("touch_input", touches)
    conn.register("order_input", orders)
    conn.execute(
        f"create table {schema}.fct_touchpoints as select touch_id, person_key, "
        "cast(touched_at as timestamp) as touched_at, channel, campaign, touch_type from touch_input"
    )
    conn.execute(
        f"create table {schema}.fct_orders as select order_id, person_key, "
        "cast(converted_at as timestamp) as ordered_at, net_revenue from order_input"
    )
    conn.unregister("touch_input")
    conn.unregister("order_input")
    compiled = journey_models_sql(dbt_vars)
    for model in JOURNEY_MODELS:
        select = compiled[model].replace('"marts".', f'"{schema}".')
        conn.execute(f"create table {schema}.{model} as {select}")


def random_world(seed: int, people: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """People with touches and conversions over ~10 weeks; some touch ties, long silences."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 1, 5)
    touches, orders = [], []
    for p in range(people):
        person = f"p{p:03d}"
        n_touches = int(rng.integers(1, 9))
        days = np.sort(rng.choice(np.arange(0, 70), size=n_touches)) + rng.uniform(0, 1, n_touches)
        days[rng.random(n_touches) < 0.1] = days[0]  # ties in time, broken by touch_id
        for d in np.sort(days):
            channel = str(rng.choice(CHANNELS))
            touches.append(
                {
                    "touch_id": f"t{len(touches):05d}",
                    "person_key": person,
                    "touched_at": start + dt.timedelta(days=float(d)),
                    "channel": channel,
                    "campaign": f"{channel}_{int(rng.integers(0, 3))}",
                    # views in every age: inside and outside the view window
                    "touch_type": str(rng.choice(["click", "view", "visit"], p=[0.5, 0.3, 0.2])),
                }
            )
        for _ in range(int(rng.integers(0, 3))):
            orders.append(
                {
                    "order_id": f"o{len(orders):05d}",
                    "person_key": person,
                    "converted_at": start + dt.timedelta(days=float(rng.uniform(0, 75))),
                    "net_revenue": float(rng.integers(1, 200)),
                }
            )
    touch_frame = pd.DataFrame(touches)
    journeys = pd.DataFrame(orders)
    journeys["path"] = ""
    journeys["touch_count"] = 0
    journeys["first_touch_at"] = journeys["converted_at"]
    return touch_frame, journeys


def monday(ts: dt.datetime) -> dt.date:
    return (ts - dt.timedelta(days=ts.weekday())).date()


def expected_journeys(
    touches: pd.DataFrame,
    journeys: pd.DataFrame,
    journey_lookback_days: float,
    click_window_days: float,
    view_window_days: float,
) -> pd.DataFrame:
    """Journeys by the documented rules, in plain Python: week, path, conversions, revenue, nulls."""
    lookback = dt.timedelta(days=journey_lookback_days)
    windows = {
        "click": min(lookback, dt.timedelta(days=click_window_days)),
        "view": min(lookback, dt.timedelta(days=view_window_days)),
    }
    rows = []
    assigned: set[str] = set()
    ordered_touches = touches.sort_values(["person_key", "touched_at", "touch_id"])
    ordered_touches = ordered_touches.assign(
        window=[windows.get(kind, lookback) for kind in ordered_touches["touch_type"]]
    )
    for person, orders in journeys.sort_values(["converted_at", "order_id"]).groupby("person_key"):
        person_touches = ordered_touches[ordered_touches["person_key"] == person]
        previous = None
        for order in orders.itertuples():
            mask = (person_touches["touched_at"] <= order.converted_at) & (
                person_touches["touched_at"] >= order.converted_at - person_touches["window"]
            )
            if previous is not None:
                mask &= person_touches["touched_at"] > previous
            mine = person_touches[mask]
            assigned.update(mine["touch_id"])
            if len(mine):
                rows.append(
                    (
                        monday(order.converted_at),
                        " > ".join(mine["channel"]),
                        1.0,
                        order.net_revenue,
                        0.0,
                    )
                )
            previous = order.converted_at
    rest = ordered_touches[~ordered_touches["touch_id"].isin(assigned)]
    for _, person_touches in rest.groupby("person_key"):
        journey: list = []
        for touch in person_touches.itertuples():
            if journey and touch.touched_at - journey[-1].touched_at > lookback:
                rows.append(
                    (
                        monday(journey[-1].touched_at),
                        " > ".join(t.channel for t in journey),
                        0.0,
                        0.0,
                        1.0,
                    )
                )
                journey = []
            journey.append(touch)
        rows.append(
            (monday(journey[-1].touched_at), " > ".join(t.channel for t in journey), 0.0, 0.0, 1.0)
        )
    return pd.DataFrame(rows, columns=["week_start", "path", "conversions", "revenue", "nulls"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_warehouse_equals_paths_engine_week_by_week(seed):
    touches, journeys = random_world(seed)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        result = attribute_from_warehouse(conn, models=PATH_MODELS)
        leftover = conn.execute(
            "select count(*) from duckdb_tables() where table_name like 'mta_journey_touches%'"
        ).fetchone()[0]
    assert leftover == 0
    credit = result["channel_credit"]
    assert list(credit.columns) == CHANNEL_CREDIT_COLUMNS
    assert str(credit["week_start"].dtype) == "date32[day][pyarrow]"
    assert all(week.weekday() == 0 for week in credit["week_start"])

    expected = expected_journeys(touches, journeys, **WINDOWS)
    weeks_with_conversions = sorted(set(expected.loc[expected["conversions"] > 0, "week_start"]))
    assert weeks_with_conversions, "fixture must convert"
    assert sorted(set(credit["week_start"])) == weeks_with_conversions
    for week in weeks_with_conversions:
        week_paths = expected[expected["week_start"] == week]
        aggregated = week_paths.groupby("path", as_index=False)[
            ["conversions", "revenue", "nulls"]
        ].sum()
        want = attribute_paths(
            aggregated_paths_frame(
                aggregated.rename(
                    columns={
                        "conversions": "total_conversions",
                        "revenue": "total_conversion_value",
                        "nulls": "total_null",
                    }
                )
            )
        )
        got = credit.loc[
            credit["week_start"] == week, ["model", "channel", "conversions", "revenue"]
        ]
        merged = want.merge(
            got, on=["model", "channel"], how="outer", suffixes=("_paths", "_warehouse")
        )
        merged = merged.fillna(0.0)
        np.testing.assert_allclose(
            merged["conversions_warehouse"], merged["conversions_paths"], atol=1e-9
        )
        np.testing.assert_allclose(merged["revenue_warehouse"], merged["revenue_paths"], atol=1e-7)


def fixed_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One person, hand-checked: lookback, previous conversion and a null journey."""
    t0 = dt.datetime(2026, 3, 2, 12)  # a Monday
    touches = pd.DataFrame(
        {
            "touch_id": ["a", "b", "c", "d", "e", "f", "g"],
            "person_key": ["p"] * 7,
            "touched_at": [
                t0
                - dt.timedelta(
                    days=40
                ),  # a: outside the 30-day lookback of order 1 -> null journey
                t0 - dt.timedelta(days=14),  # b
                t0 - dt.timedelta(days=7),  # c
                t0,  # d: at the conversion instant, belongs to order 1
                t0 + dt.timedelta(days=2),  # e: order 2
                t0 + dt.timedelta(days=20),  # f: after the last order -> null journey
                t0 + dt.timedelta(days=60),  # g: 40 days of silence later -> another null journey
            ],
            "channel": ["display", "social", "search", "direct", "email", "social", "search"],
            "campaign": ["d1", "s1", "q1", "x", "e1", "s2", "q1"],
            "touch_type": ["view", "click", "click", "visit", "click", "click", "click"],
        }
    )
    journeys = pd.DataFrame(
        {
            "order_id": ["o1", "o2"],
            "person_key": ["p", "p"],
            "converted_at": [t0, t0 + dt.timedelta(days=3)],
            "net_revenue": [70.0, 30.0],
            "path": ["social > search > direct", "email"],
            "touch_count": [3, 1],
            "first_touch_at": [t0 - dt.timedelta(days=14), t0 + dt.timedelta(days=2)],
        }
    )
    return touches, journeys


def test_time_decay_and_journey_rules_by_hand():
    touches, journeys = fixed_world()
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        result = attribute_from_warehouse(
            conn, models=["time_decay", "last_non_direct", "first_touch"]
        )
    credit = result["channel_credit"].set_index(["model", "channel"])
    # order 1: social 14 days, search 7 days, direct 0 days before: weights 1/4, 1/2, 1 -> /1.75
    assert credit.loc[("time_decay", "social"), "conversions"] == pytest.approx(0.25 / 1.75)
    assert credit.loc[("time_decay", "search"), "conversions"] == pytest.approx(0.5 / 1.75)
    assert credit.loc[("time_decay", "direct"), "revenue"] == pytest.approx(70 / 1.75)
    assert credit.loc[("time_decay", "email"), "conversions"] == pytest.approx(1.0)
    assert credit.loc[("last_non_direct", "search"), "conversions"] == pytest.approx(1.0)
    assert ("first_touch", "display") not in credit.index  # 'a' is outside the lookback
    assert set(credit["week_start"]) == {dt.date(2026, 3, 2)}
    summary = result["conversion_summary"].set_index("week_start")
    assert summary.loc[dt.date(2026, 3, 2), "attributable_conversions"] == 2
    # null journeys: [a] (week of 2026-01-19), [f] (2026-03-16), [g] (2026-04-27)
    assert summary["non_converting_journeys"].sum() == 3
    assert summary.loc[dt.date(2026, 1, 19), "non_converting_journeys"] == 1


def test_journey_windows_are_the_dbt_vars():
    """The lookback and the view window are dbt vars that fct_journey_touches applies:
    'a' (a view 40 days back) joins order 1's journey only when both reach it. MTA takes
    the lookback from dbt_project.yml unless told the one a dbt build was given."""
    touches, journeys = fixed_world()
    with duckdb.connect() as conn:
        create_tables(
            conn, touches, journeys, dbt_vars={"journey_lookback_days": 45, "view_window_days": 45}
        )
        result = attribute_from_warehouse(conn, models=["first_touch"], lookback_days=45)
        path = conn.execute(
            "select path from marts.fct_conversion_journeys where order_id = 'o1'"
        ).fetchone()[0]
    credit = result["channel_credit"].set_index("channel")
    assert credit.loc["display", "conversions"] == pytest.approx(1.0)  # 'a' is 40 days back
    assert path == "display > social > search > direct"


def test_half_life_is_a_parameter():
    touches, journeys = fixed_world()
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        result = attribute_from_warehouse(conn, models=["time_decay"], half_life_days=14)
    credit = result["channel_credit"].set_index("channel")
    # ages 14, 7, 0 with half-life 14: weights 1/2, 2^-0.5, 1
    total = 0.5 + 2**-0.5 + 1
    assert credit.loc["social", "conversions"] == pytest.approx(0.5 / total)


def test_campaign_drill_down_sums_to_channel_credit():
    touches, journeys = random_world(4)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        result = attribute_from_warehouse(conn)
    campaigns = result["campaign_credit"]
    assert list(campaigns.columns) == CAMPAIGN_CREDIT_COLUMNS
    summed = campaigns.groupby(["model", "week_start", "channel"], as_index=False)[
        ["conversions", "revenue"]
    ].sum()
    merged = summed.merge(result["channel_credit"], on=["model", "week_start", "channel"])
    assert len(merged) == len(result["channel_credit"])
    np.testing.assert_allclose(merged["conversions_x"], merged["conversions_y"], atol=1e-9)
    # campaigns belong to their channel (fixture names campaigns '<channel>_<n>')
    named = campaigns.dropna(subset=["campaign"])
    assert (named["campaign"].str.split("_").str[0] == named["channel"]).all()
    # every model credits each week's attributable conversions and revenue
    summary = result["conversion_summary"].set_index("week_start")
    per_week = (
        result["channel_credit"].groupby(["model", "week_start"])[["conversions", "revenue"]].sum()
    )
    for (_, week), row in per_week.iterrows():
        assert row["conversions"] == pytest.approx(summary.loc[week, "attributable_conversions"])
        assert row["revenue"] == pytest.approx(summary.loc[week, "attributable_revenue"])


def test_ordered_shapley_breaks_down_shapley():
    touches, journeys = random_world(5)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        result = attribute_from_warehouse(conn, models=["shapley", "ordered_shapley"])
    ordered = result["ordered_shapley"]
    assert ordered["touch_order"].min() == 1
    totals = ordered.groupby(["week_start", "channel"], as_index=False)[
        ["conversions", "revenue"]
    ].sum()
    merged = totals.merge(result["channel_credit"], on=["week_start", "channel"])
    assert len(merged) == len(result["channel_credit"])
    np.testing.assert_allclose(merged["conversions_x"], merged["conversions_y"], atol=1e-9)


def test_table_names_are_parameters_and_checked():
    touches, journeys = fixed_world()
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys, schema="fixture")
        result = attribute_from_warehouse(
            conn,
            models=["linear"],
            journeys_table="fixture.fct_conversion_journeys",
            journey_touches_table="fixture.fct_journey_touches",
        )
        assert result["channel_credit"]["conversions"].sum() == pytest.approx(2)
        with pytest.raises(ValueError, match="journey touches table"):
            attribute_from_warehouse(conn, journey_touches_table="fixture.t; drop table x")


def test_channel_with_separator_is_rejected():
    touches, journeys = fixed_world()
    touches.loc[0, "channel"] = "paid > social"
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        with pytest.raises(ValueError, match="must not contain '>'"):
            attribute_from_warehouse(conn, models=["linear"])


def test_aggregated_paths_from_warehouse_match_the_journey_rules():
    touches, journeys = random_world(6)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        got = aggregated_paths_from_warehouse(conn, by_week=True)
    want = (
        expected_journeys(touches, journeys, **WINDOWS)
        .groupby(["week_start", "path"], as_index=False)[["conversions", "revenue", "nulls"]]
        .sum()
    )
    got = got.assign(week_start=got["week_start"].astype(object)).sort_values(
        ["week_start", "path"]
    )
    want = want.sort_values(["week_start", "path"])
    assert list(got["path"]) == list(want["path"])
    assert list(got["week_start"]) == list(want["week_start"])
    np.testing.assert_allclose(
        got[["conversions", "revenue", "nulls"]], want[["conversions", "revenue", "nulls"]]
    )


def test_touches_without_a_person_form_non_converting_journeys():
    """Touches with no person key cannot be linked to an order (NULL never joins), so they
    are one unknown "person" whose touches all stay unassigned: its non-converting
    journeys follow the same rules as a named person's, none lost or split apart; orders
    without a person have no touches to credit."""
    touches, journeys = bucket_world("null")
    lookback_days = 7  # short enough for the unknown person's touches to fall silent
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys, dbt_vars={"journey_lookback_days": lookback_days})
        got = aggregated_paths_from_warehouse(conn, lookback_days=lookback_days, by_week=True)
    want = (
        expected_journeys(
            touches.assign(person_key=touches["person_key"].fillna("(nobody)")),
            journeys[journeys["person_key"].notna()],
            **{**WINDOWS, "journey_lookback_days": lookback_days},
        )
        .groupby(["week_start", "path"], as_index=False)[["conversions", "revenue", "nulls"]]
        .sum()
    )
    got = got.assign(week_start=got["week_start"].astype(object))
    assert_same_frames(got, want, ["week_start", "path"])
    nobody = touches[touches["person_key"].isna()].sort_values("touched_at")
    silences = nobody["touched_at"].diff() > pd.Timedelta(days=lookback_days)
    assert silences.any()  # the unknown person's touches split into several journeys


def assert_same_frames(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    """Same rows (by ``keys``) and columns; numbers equal to float rounding."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    merged = want.merge(got, on=keys, how="outer", suffixes=("_want", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    for column in [c for c in want.columns if c not in keys]:
        np.testing.assert_allclose(
            merged[f"{column}_got"].to_numpy(dtype=float),
            merged[f"{column}_want"].to_numpy(dtype=float),
            rtol=1e-12,
            atol=1e-9,
            err_msg=column,
        )


def bucket_world(key_type: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The random world with text, integer or partly NULL person keys."""
    touches, journeys = random_world(11, people=80)
    if key_type == "int":
        touches["person_key"] = touches["person_key"].str[1:].astype("int64")
        journeys["person_key"] = journeys["person_key"].str[1:].astype("int64")
    elif key_type == "null":  # one unknown "person" (NULL key), in both tables
        nobody = touches["person_key"].isin(["p003", "p041"])
        touches["person_key"] = touches["person_key"].astype(object).where(~nobody, None)
        journeys["person_key"] = (
            journeys["person_key"]
            .astype(object)
            .where(~journeys["person_key"].isin(["p003", "p041"]), None)
        )
    return touches, journeys


@pytest.mark.parametrize("key_type", ["text", "int", "null"])
def test_person_buckets_give_the_one_pass_result(key_type):
    touches, journeys = bucket_world(key_type)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        # the buckets partition the touches: each touch in exactly one
        ranges = person_buckets(conn, "marts.fct_journey_touches", 4)
        assert len(ranges) == 4
        in_bucket = [
            conn.execute(
                f"select count(*) from marts.fct_journey_touches where {r.predicate('person_key')}"
            ).fetchone()[0]
            for r in ranges
        ]
        assert sum(in_bucket) == len(touches)
        assert min(in_bucket) > len(touches) / 8  # cut at quantiles: about a quarter each
        one = attribute_from_warehouse(conn, models=ALL_MODELS, buckets=1)
        paths_one = aggregated_paths_from_warehouse(conn, by_week=True, buckets=1)
        # 1000 buckets > 80 people: repeated cuts dropped, one person per bucket
        for buckets in (4, 1000) if key_type == "text" else (4,):
            many = attribute_from_warehouse(conn, models=ALL_MODELS, buckets=buckets)
            assert_same_frames(
                many["channel_credit"], one["channel_credit"], ["model", "week_start", "channel"]
            )
            assert_same_frames(
                many["campaign_credit"],
                one["campaign_credit"],
                ["model", "week_start", "channel", "campaign"],
            )
            assert_same_frames(
                many["ordered_shapley"],
                one["ordered_shapley"],
                ["week_start", "channel", "touch_order"],
            )
            assert many["conversion_summary"].equals(one["conversion_summary"])
            paths_many = aggregated_paths_from_warehouse(conn, by_week=True, buckets=buckets)
            assert_same_frames(paths_many, paths_one, ["week_start", "path"])
            assert (
                paths_many[["conversions", "nulls"]] == paths_one[["conversions", "nulls"]]
            ).all(axis=None)
    assert one["conversion_summary"]["non_converting_journeys"].sum() > 0


def test_bucket_count_follows_the_touch_count(monkeypatch):
    touches, journeys = bucket_world("text")
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        assert person_buckets(conn, "marts.fct_journey_touches") == [None]  # small: one pass
        monkeypatch.setattr(engine, "TOUCHES_PER_BUCKET", 100)
        assert len(person_buckets(conn, "marts.fct_journey_touches")) == -(-len(touches) // 100)
        with pytest.raises(ValueError, match="buckets must be a positive integer"):
            attribute_from_warehouse(conn, buckets=0)
