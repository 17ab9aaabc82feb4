"""The vectorized path engine (numpy on encoded paths) against the SQL definitions.

Path-level models run in numpy on :class:`EncodedPaths`; the portable SQL in
:mod:`triangulate.mta.sql` defines the same aggregates over a journey-touch relation.
These tests run both on the same paths (with weeks, repeats, ``direct`` and zero-weight
rows) and require the same numbers, and check the path-code route from the warehouse
(including journeys too long for a code).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.test_mta_warehouse import create_tables, random_world
from triangulate.mta import sql
from triangulate.mta.engine import (
    aggregated_paths_from_warehouse,
    attribute_paths,
    journey_paths,
    journey_touches,
)
from triangulate.mta.heuristics import PATH_HEURISTIC_MODELS, heuristic_credit
from triangulate.mta.markov import markov_transitions, removal_effects
from triangulate.mta.paths import (
    decoded_paths,
    encode_path_codes,
    encode_paths,
    path_touches,
)
from triangulate.mta.shapley import ordered_shapley_credit

CHANNELS = ["A", "B", "C", "direct"]


def random_paths(seed: int, rows: int = 40, weeks: int = 3) -> pd.DataFrame:
    """Canonical paths by week: repeats, 'direct', zero-conversion and zero-weight rows."""
    rng = np.random.default_rng(seed)
    paths = [" > ".join(rng.choice(CHANNELS, size=rng.integers(1, 7))) for _ in range(rows)]
    conversions = rng.integers(0, 4, size=rows).astype(float)
    nulls = rng.integers(0, 3, size=rows).astype(float)
    return pd.DataFrame(
        {
            "week_start": pd.to_datetime("2026-01-05")
            + pd.to_timedelta(7 * rng.integers(0, weeks, size=rows), unit="D"),
            "path": pd.Series(paths, dtype="str"),
            "conversions": conversions,
            "revenue": (conversions * rng.uniform(5, 50, size=rows)).round(2),
            "nulls": nulls,
        }
    ).drop_duplicates(["week_start", "path"], ignore_index=True)


def sql_over_paths(paths: pd.DataFrame, query: str) -> pd.DataFrame:
    """Run one of sql.py's queries, written against a table ``touches``, on the paths'
    journey-touch relation."""
    with duckdb.connect() as conn:
        conn.register("touches", path_touches(paths).assign(campaign="none", age_days=0.0))
        return conn.execute(query).df()


def test_encode_paths_layout_and_round_trip():
    paths = pd.DataFrame(
        {
            "path": pd.Series(["b > a > b", "c", "a > a"], dtype="str"),
            "conversions": [1.0, 2.0, 0.0],
            "revenue": [10.0, 4.0, 0.0],
            "nulls": [0.0, 1.0, 3.0],
        }
    )
    encoded = encode_paths(paths)
    assert encoded.channels == ("a", "b", "c")
    assert encoded.touch_channel.tolist() == [1, 0, 1, 2, 0, 0]
    assert encoded.path_start.tolist() == [0, 3, 4, 6]
    assert encoded.touch_position.tolist() == [0, 1, 2, 0, 0, 1]
    assert encoded.groups == (None,)
    assert decoded_paths(encoded) == ["b > a > b", "c", "a > a"]


def test_path_codes_decode_to_channels_and_append_longer_paths():
    channels = ["A", "B", "C"]  # codes 1, 2, 3 in base 4, first touch least significant
    codes = pd.DataFrame(
        {
            "path_code": [2 + 1 * 4 + 3 * 16, 3],  # B > A > C, C
            "conversions": [2.0, 1.0],
            "revenue": [20.0, 5.0],
            "nulls": [1.0, 0.0],
        }
    )
    longer = pd.DataFrame(
        {"path": ["A > A > B > C"], "conversions": [1.0], "revenue": [7.0], "nulls": [0.0]}
    )
    encoded = encode_path_codes(codes, channels, longer)
    assert decoded_paths(encoded) == ["B > A > C", "C", "A > A > B > C"]
    assert encoded.revenue.tolist() == [20.0, 5.0, 7.0]
    with pytest.raises(ValueError, match="without a code"):
        encode_path_codes(codes, channels, longer.assign(path="A > Z"))
    with pytest.raises(ValueError, match="sorted"):
        encode_path_codes(codes, ["B", "A", "C"])


def test_path_code_capacity_stays_exact():
    assert sql.path_code_capacity(8) == 16  # 9^16 <= 2^53 < 9^17
    assert sql.path_code_capacity(1) == 53
    for channels in (1, 2, 7, 8, 50, 1000):
        touches = sql.path_code_capacity(channels)
        assert (channels + 1) ** touches <= 2**53 < (channels + 1) ** (touches + 1)
    with pytest.raises(ValueError, match="max_touches"):
        sql.path_codes_sql("t", False, ["A", "B"], sql.path_code_capacity(2) + 1)


@pytest.mark.parametrize("seed", [1, 2])
def test_heuristics_equal_the_sql_weights(seed):
    paths = random_paths(seed)
    got = heuristic_credit(encode_paths(paths), PATH_HEURISTIC_MODELS, "direct")
    expected = sql_over_paths(paths, sql.heuristic_credit_sql("touches", "direct", 7.0))
    weeks = encode_paths(paths).groups
    expected["group"] = [weeks.index(pd.Timestamp(w)) for w in expected["week_start"]]
    for model in PATH_HEURISTIC_MODELS:
        mine = got[got["model"] == model].set_index(["group", "channel"]).sort_index()
        theirs = (
            expected.groupby(["group", "channel"])[[f"{model}__conversions", f"{model}__revenue"]]
            .sum()
            .sort_index()
        )
        assert list(mine.index) == list(theirs.index), model
        np.testing.assert_allclose(mine["conversions"], theirs[f"{model}__conversions"], atol=1e-12)
        np.testing.assert_allclose(mine["revenue"], theirs[f"{model}__revenue"], atol=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_transitions_equal_the_sql_transitions(order):
    paths = random_paths(order + 10)
    encoded = encode_paths(paths)
    got = markov_transitions(encoded, order).frame(encoded.groups)
    expected = sql_over_paths(paths, sql.markov_transitions_sql("touches", order))
    keys = ["week_start", "from_state", "to_state"]
    expected = expected.groupby(keys, dropna=False, sort=True).sum().reset_index()
    got["week_start"] = pd.to_datetime(got["week_start"])
    expected["week_start"] = pd.to_datetime(expected["week_start"])
    merged = got.merge(expected, on=keys, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    for column in ("transitions", "conversions", "revenue", "nulls"):
        np.testing.assert_allclose(merged[f"{column}_x"], merged[f"{column}_y"], atol=1e-9)
    # the same counts give the same exact removal effects through either route
    week = expected["week_start"].min()
    ours = removal_effects(got[got["week_start"] == week])
    sqls = removal_effects(expected[expected["week_start"] == week])
    assert ours.conversion_probability == pytest.approx(sqls.conversion_probability, abs=1e-12)
    assert ours.removal_effects == pytest.approx(sqls.removal_effects, abs=1e-12)


def test_ordered_shapley_equals_the_sql_channel_sequences():
    paths = random_paths(5)
    encoded = encode_paths(paths)
    got = ordered_shapley_credit(encoded)
    sequences = sql_over_paths(paths, sql.channel_sequences_sql("touches"))
    expected: dict[tuple, list[float]] = {}
    for row in sequences.itertuples():
        channels = row.channel_sequence.split(" > ")
        group = encoded.groups.index(pd.Timestamp(row.week_start))
        for order, channel in enumerate(channels, start=1):
            cell = expected.setdefault((group, channel, order), [0.0, 0.0])
            cell[0] += row.conversions / len(channels)
            cell[1] += row.revenue / len(channels)
    assert len(got) == len(expected)
    for row in got.itertuples():
        conversions, revenue = expected[(row.group, row.channel, row.touch_order)]
        assert row.conversions == pytest.approx(conversions, abs=1e-12)
        assert row.revenue == pytest.approx(revenue, abs=1e-9)


@pytest.mark.parametrize("by_week", [True, False])
def test_path_codes_and_long_journey_strings_equal_string_paths(by_week):
    touches, journeys = random_world(7)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        with journey_touches(conn, "marts.fct_journey_touches") as table:
            channels = sorted(conn.execute(sql.channels_sql(table)).df()["channel"])
            strings = conn.execute(sql.aggregated_paths_sql(table, by_week)).df()
            # 2 touches per code: most journeys take the string route, the rest codes
            mixed = journey_paths(conn, table, by_week, channels, max_coded_touches=2)
            coded = journey_paths(conn, table, by_week, channels)
        public = aggregated_paths_from_warehouse(conn, by_week=by_week)
    assert strings["path"].str.count(">").max() >= 2, "fixture must have long journeys"
    keys = ["week_start", "path"] if by_week else ["path"]

    def table_of(encoded):
        frame = pd.DataFrame(
            {
                "path": decoded_paths(encoded),
                "conversions": encoded.conversions,
                "revenue": encoded.revenue,
                "nulls": encoded.nulls,
            }
        )
        if by_week:
            frame["week_start"] = pd.to_datetime(
                pd.Series(np.array(encoded.groups, dtype=object)[encoded.group])
            )
        return frame.sort_values(keys, ignore_index=True)

    if by_week:
        strings["week_start"] = pd.to_datetime(strings["week_start"])
        public["week_start"] = pd.to_datetime(public["week_start"].astype(object))
    want = strings.sort_values(keys, ignore_index=True)
    for got in (table_of(mixed), table_of(coded), public.sort_values(keys, ignore_index=True)):
        assert got[keys].astype(str).equals(want[keys].astype(str))
        np.testing.assert_allclose(
            got[["conversions", "revenue", "nulls"]], want[["conversions", "revenue", "nulls"]]
        )


def test_attribute_paths_with_weeks_fits_each_week_and_sums():
    paths = random_paths(9)
    got = attribute_paths(paths).set_index(["model", "channel"]).sort_index()
    weekly = [
        attribute_paths(week.drop(columns="week_start")) for _, week in paths.groupby("week_start")
    ]
    want = (
        pd.concat(weekly)
        .groupby(["model", "channel"])[["conversions", "revenue"]]
        .sum()
        .sort_index()
    )
    pooled = attribute_paths(paths.drop(columns="week_start")).set_index(["model", "channel"])
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got[["conversions", "revenue"]], want, atol=1e-9)
    # Markov fitted per week differs from one chain over all weeks (the test can tell)
    assert not np.allclose(
        got.loc["markov_1", "conversions"], pooled.loc["markov_1", "conversions"]
    )


@pytest.mark.parametrize("order", [1, 2, 3])
def test_dense_and_sparse_chain_solves_agree(order, monkeypatch):
    """Small chains are solved dense, large ones sparse (markov.DENSE_STATES): the same
    exact LU solve, so every credit and removal effect agrees to rounding either way."""
    from triangulate.mta import markov

    paths = encode_paths(random_paths(11, rows=120, weeks=2))
    monkeypatch.setattr(markov, "DENSE_STATES", 10**6)
    dense = markov.markov_credit(paths, order)
    monkeypatch.setattr(markov, "DENSE_STATES", 0)
    sparse = markov.markov_credit(paths, order)
    assert len(dense) > 0 and list(dense["channel"]) == list(sparse["channel"])
    columns = ["conversions", "revenue", "removal_effect", "revenue_removal_effect"]
    np.testing.assert_allclose(dense[columns], sparse[columns], rtol=1e-10, atol=1e-12)
