"""Data-quality gates (issue 6): clean frames pass every suite; a bad-input corpus fails
with the right table, expectation and offending values in the message."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from triangulate import quality
from triangulate.paths import PROJECT_ROOT
from triangulate.quality import GATED_TABLES, validate_table

TODAY = date(2026, 11, 23)
WEEKS = pd.date_range("2024-11-18", periods=104, freq="W-MON").astype("datetime64[us]")
GEOS = ["501", "602", "803"]
CHANNELS = ["meta", "tiktok", "tv"]


FX_CURRENCIES = ["USD", "CAD", "EUR", "GBP"]
"""What ``quality.known_currencies`` gives the asset checks for an FX reference of CAD, EUR
and GBP (plus USD, its quote currency)."""


def gate(table: str, frame: pd.DataFrame, **kwargs) -> quality.GateResult:
    kwargs["parameters"] = {"known_currencies": FX_CURRENCIES, **(kwargs.get("parameters") or {})}
    return validate_table(table, frame, today=TODAY, data_docs=False, **kwargs)


def _str(values) -> pd.Series:
    return pd.Series(values, dtype="str")


# --------------------------------------------------------------------------- clean frames
def weekly_channel_spend() -> pd.DataFrame:
    grid = pd.MultiIndex.from_product(
        [WEEKS, GEOS, CHANNELS], names=["week_start", "geo", "channel"]
    )
    frame = grid.to_frame(index=False)
    rng = np.random.default_rng(1)
    frame["spend"] = rng.gamma(4.0, 50.0, len(frame)).round(2)
    frame.loc[(frame.channel == "tv") & (frame.index % 4 == 0), "spend"] = 0.0  # flighting
    frame["impressions"] = (frame.spend * 80).astype("int64")
    frame["clicks"] = (frame.spend * 0.9).astype("int64")
    frame["geo"], frame["channel"] = _str(frame.geo), _str(frame.channel)
    return frame


def orders(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    gross = rng.lognormal(4.5, 0.4, n).round(2)
    refunded = np.where(np.arange(n) % 20 == 0, gross, 0.0)
    return pd.DataFrame({
        "order_id": _str([f"ord_{i:05d}" for i in range(n)]),
        "ordered_at": pd.Series(pd.date_range("2025-01-01", periods=n, freq="7h", tz="UTC")).astype("datetime64[us, UTC]"),
        "customer_key": _str([f"c{i % 97}" for i in range(n)]),
        "geo": _str([GEOS[i % 3] for i in range(n)]),
        "gross_revenue": gross,
        "refunded": refunded,
        "net_revenue": (gross - refunded).round(2),
        "currency_original": _str(["USD", "EUR", "GBP", "CAD"][i % 4] for i in range(n)),
        "payment_count": np.ones(n, dtype="int32"),
    })  # fmt: skip


def weekly_revenue() -> pd.DataFrame:
    grid = pd.MultiIndex.from_product([WEEKS, GEOS], names=["week_start", "geo"]).to_frame(
        index=False
    )
    rng = np.random.default_rng(3)
    grid["geo"] = _str(grid.geo)
    grid["orders"] = rng.poisson(40, len(grid)).astype("int64")
    grid["gross_revenue"] = (grid.orders * 95.0).round(2)
    grid["refunds"] = (grid.gross_revenue * 0.05).round(2)
    grid["net_revenue"] = (grid.gross_revenue - grid.refunds).round(2)
    return grid


def conversion_journeys(n: int = 200) -> pd.DataFrame:
    paths = [
        "meta > google_search_brand",
        "tiktok",
        "direct",
        "tv > organic > email",
        "youtube > direct",
    ]
    converted = pd.Series(pd.date_range("2025-03-01", periods=n, freq="11h")).astype(
        "datetime64[us]"
    )
    return pd.DataFrame({
        "order_id": _str([f"ord_{i:05d}" for i in range(n)]),
        "person_key": _str([f"p{i}" for i in range(n)]),
        "converted_at": converted,
        "net_revenue": np.full(n, 95.0),
        "path": _str([paths[i % len(paths)] for i in range(n)]),
        "touch_count": np.array([len(paths[i % len(paths)].split(">")) for i in range(n)], dtype="int64"),
        "first_touch_at": converted - pd.Timedelta(days=3),
    })  # fmt: skip


def mmm_weekly_input() -> pd.DataFrame:
    spend = weekly_channel_spend().pivot_table(
        index=["week_start", "geo"], columns="channel", values="spend"
    )
    frame = spend.add_prefix("spend_").reset_index()
    frame.columns.name = None
    frame["geo"] = _str(frame.geo)
    frame["net_revenue"] = 5000.0 + frame.filter(like="spend_").sum(axis=1) * 2.0
    frame["control_price_index"] = 1.0
    return frame


def raw_meta_insights() -> pd.DataFrame:
    n = 6
    return pd.DataFrame({
        "payload": _str(["{}"] * n), "_file": _str(["ads/meta/2025-01.json"] * n), "_line": np.arange(1, n + 1),
        "date_start": _str(["2025-01-0%d" % (i + 1) for i in range(n)]), "date_stop": _str(["2025-01-0%d" % (i + 1) for i in range(n)]),
        "account_id": _str(["act_1"] * n), "account_currency": _str(["USD"] * n),
        "campaign_id": _str(["23851000001"] * n), "campaign_name": _str(["meta_prospecting_broad"] * n),
        "spend": _str(["12.34", "0", "7.5", "100.00", "3", "9.99"]),
        "impressions": _str(["1000"] * n), "clicks": _str(["10"] * n), "dma": _str(["New York"] * n),
    })  # fmt: skip


CLEAN = {
    "marts.fct_weekly_channel_spend": weekly_channel_spend,
    "marts.fct_orders": orders,
    "marts.fct_weekly_revenue": weekly_revenue,
    "marts.fct_conversion_journeys": conversion_journeys,
    "marts.mmm_weekly_input": mmm_weekly_input,
    "raw.meta_insights": raw_meta_insights,
}


@pytest.mark.parametrize("table", sorted(CLEAN))
def test_clean_frame_passes(table: str) -> None:
    result = gate(table, CLEAN[table]())
    assert result.success, result.message()
    assert result.failed == []
    assert result.n_expectations >= 5
    assert result.message().startswith(f"{table}: all ")


def failed_types(result: quality.GateResult) -> list[tuple[str, str | None]]:
    return [(f.expectation, f.column) for f in result.failed]


# --------------------------------------------------------------------------- bad-input corpus
def test_negative_spend_names_table_expectation_and_row() -> None:
    frame = weekly_channel_spend()
    row = frame.index[
        (frame.geo == "602") & (frame.channel == "meta") & (frame.week_start == WEEKS[20])
    ][0]
    frame.loc[row, "spend"] = -120.0
    result = gate("marts.fct_weekly_channel_spend", frame)
    assert not result.success
    assert failed_types(result) == [("expect_column_values_to_be_between", "spend")]
    failure = result.failed[0]
    assert failure.unexpected_count == 1 and failure.kwargs["min_value"] == 0
    assert failure.example_rows == [
        {"week_start": str(WEEKS[20].date()), "geo": "602", "channel": "meta", "spend": -120.0}
    ]
    message = result.message()
    assert message.startswith(
        "marts.fct_weekly_channel_spend: expect_column_values_to_be_between(spend, min 0)"
    )
    assert f"1 of {len(frame):,} rows" in message
    assert f"week_start={WEEKS[20].date()} geo=602 channel=meta spend=-120.0" in message


def test_missing_week_is_reported_on_the_rows_after_the_gap() -> None:
    frame = weekly_channel_spend()
    gap = (frame.geo == "803") & frame.week_start.isin(WEEKS[[30, 31]])  # a geo's load missing
    result = gate("marts.fct_weekly_channel_spend", frame[~gap])
    assert failed_types(result) == [("expect_column_values_to_be_between", "_weeks_since_previous")]
    assert result.failed[0].unexpected_count == len(CHANNELS)
    assert result.failed[0].example_rows[0] == {
        "week_start": str(WEEKS[32].date()),
        "geo": "803",
        "channel": "meta",
        "_weeks_since_previous": 3.0,
    }
    assert "no missing weeks per geo" in result.message()


def test_a_channel_that_is_off_may_have_no_rows() -> None:
    frame = weekly_channel_spend()
    off = (frame.channel == "tv") & frame.week_start.isin(WEEKS[40:44])  # not zero-filled
    assert gate("marts.fct_weekly_channel_spend", frame[~off]).success


def test_missing_week_in_weekly_revenue_and_mmm_input() -> None:
    revenue = weekly_revenue()
    no_orders = (revenue.geo == "501") & (revenue.week_start == WEEKS[50])
    assert gate(
        "marts.fct_weekly_revenue", revenue[~no_orders]
    ).success  # a geo-week without orders
    result = gate("marts.fct_weekly_revenue", revenue[revenue.week_start != WEEKS[50]])
    assert failed_types(result) == [("expect_column_values_to_be_between", "_weeks_since_previous")]
    assert result.failed[0].unexpected_count == len(GEOS)
    assert f"week_start={WEEKS[51].date()} geo=501 _weeks_since_previous=2.0" in result.message()

    mmm = mmm_weekly_input()
    mmm = mmm[~((mmm.geo == "602") & (mmm.week_start == WEEKS[7]))]  # zero-filled: an error
    result = gate("marts.mmm_weekly_input", mmm)
    assert failed_types(result) == [("expect_column_values_to_be_between", "_weeks_since_previous")]
    assert f"week_start={WEEKS[8].date()} geo=602" in result.message()


def test_spend_spike_against_trailing_median() -> None:
    frame = weekly_channel_spend()
    row = frame.index[
        (frame.geo == "501") & (frame.channel == "meta") & (frame.week_start == WEEKS[40])
    ][0]
    typical = frame.loc[frame.index[(frame.geo == "501") & (frame.channel == "meta")], "spend"]
    trailing = typical[(frame.week_start >= WEEKS[32]) & (frame.week_start < WEEKS[40])].median()
    frame.loc[row, "spend"] = round(trailing * 25, 2)
    result = gate("marts.fct_weekly_channel_spend", frame)
    assert failed_types(result) == [
        ("expect_column_values_to_be_between", "_spend_vs_trailing_median")
    ]
    example = result.failed[0].example_rows[0]
    assert (example["geo"], example["channel"], example["week_start"]) == (
        "501",
        "meta",
        str(WEEKS[40].date()),
    )
    assert example["_spend_vs_trailing_median"] == pytest.approx(25.0, rel=1e-3)
    assert "max 10" in result.message()


def test_duplicated_order() -> None:
    frame = orders()
    frame = pd.concat([frame, frame.iloc[[17]]], ignore_index=True)
    result = gate("marts.fct_orders", frame)
    assert failed_types(result) == [("expect_column_values_to_be_unique", "order_id")]
    assert result.failed[0].unexpected_count == 2
    assert "order_id=ord_00017" in result.message()


def test_order_paid_twice_is_a_duplicated_order() -> None:
    # upstream collapses payments by order id, so the duplicate shows as payment_count 2
    frame = orders()
    frame.loc[23, "payment_count"] = 2
    result = gate("marts.fct_orders", frame)
    assert failed_types(result) == [("expect_column_values_to_be_between", "payment_count")]
    assert "order_id=ord_00023" in result.message() and "payment_count=2" in result.message()


def test_refund_greater_than_gross() -> None:
    frame = orders()
    frame.loc[5, "refunded"] = frame.loc[5, "gross_revenue"] + 10.0
    frame.loc[5, "net_revenue"] = -10.0
    result = gate("marts.fct_orders", frame)
    assert failed_types(result) == [("expect_column_pair_values_a_to_be_greater_than_b", None)]
    message = result.message()
    assert "expect_column_pair_values_a_to_be_greater_than_b(gross_revenue >= refunded)" in message
    assert "order_id=ord_00005" in message and f"refunded={frame.loc[5, 'refunded']}" in message


def test_net_revenue_must_equal_gross_minus_refunded() -> None:
    frame = orders()
    frame.loc[9, "net_revenue"] += 1.0
    result = gate("marts.fct_orders", frame)
    assert failed_types(result) == [("expect_column_values_to_be_between", "_net_revenue_residual")]
    assert result.failed[0].example_rows[0]["_net_revenue_residual"] == pytest.approx(1.0)


def test_unknown_currency_and_parameter_override() -> None:
    frame = orders()
    frame.loc[3, "currency_original"] = "XYZ"
    result = gate("marts.fct_orders", frame)
    assert failed_types(result) == [("expect_column_values_to_be_in_set", "currency_original")]
    assert "currency_original=XYZ" in result.message()
    assert "in {USD, CAD, EUR, GBP}" in result.message()
    assert gate(
        "marts.fct_orders",
        frame,
        parameters={"known_currencies": ["USD", "EUR", "GBP", "CAD", "XYZ"]},
    ).success


@pytest.mark.parametrize(
    ("table", "make", "column", "helper"),
    [
        ("marts.fct_orders", orders, "ordered_at", "_ordered_at_days_after_today"),
        ("marts.fct_weekly_revenue", weekly_revenue, "week_start", "_week_start_days_after_today"),
        (
            "marts.fct_weekly_channel_spend",
            weekly_channel_spend,
            "week_start",
            "_week_start_days_after_today",
        ),
        (
            "marts.fct_conversion_journeys",
            conversion_journeys,
            "converted_at",
            "_converted_at_days_after_today",
        ),
    ],
)
def test_future_date(table, make, column, helper) -> None:
    frame = make()
    last = frame[column].max()
    # a Monday, 7 days after TODAY
    future = pd.Timestamp("2026-11-30", tz=getattr(last, "tz", None))
    if table in ("marts.fct_weekly_revenue", "marts.fct_weekly_channel_spend"):
        frame = frame[frame.week_start == last].assign(week_start=future.as_unit("us"))
        frame = pd.concat([make(), frame], ignore_index=True)
        # the extra week also leaves a gap after the real last week: both are reported
    else:
        frame.loc[0, column] = future
    result = gate(table, frame)
    assert ("expect_column_values_to_be_between", helper) in failed_types(result)
    failure = next(f for f in result.failed if f.column == helper)
    assert failure.example_rows[0][helper] == 7.0
    assert "2026-11-30" in result.message() and "not in the future" in result.message()


def test_today_is_not_the_future_for_tz_aware_timestamps() -> None:
    frame = orders()
    frame.loc[0, "ordered_at"] = pd.Timestamp("2026-11-23 23:30", tz="UTC")
    assert gate("marts.fct_orders", frame).success


def test_too_many_journeys_with_unknown_channels() -> None:
    frame = conversion_journeys()
    assert len(frame) == 200
    frame.loc[:9, "path"] = "meta > unknown"  # 10 of 200 = 5%: at the threshold, passes
    assert gate("marts.fct_conversion_journeys", frame).success
    frame.loc[10:19, "path"] = "snapchat > direct"  # not in known_channels: 20 of 200 = 10%
    result = gate("marts.fct_conversion_journeys", frame)
    assert failed_types(result) == [
        ("expect_column_values_to_be_in_set", "_path_has_unknown_channel")
    ]
    message = result.message()
    assert "20 of 200 rows (10.0%; at most 5.0% allowed)" in message
    assert "path=meta > unknown" in message


def test_journey_checks_touch_count_and_first_touch() -> None:
    frame = conversion_journeys()
    frame.loc[4, "touch_count"] = 0
    frame.loc[6, "first_touch_at"] = frame.loc[6, "converted_at"] + pd.Timedelta(hours=1)
    result = gate("marts.fct_conversion_journeys", frame)
    assert failed_types(result) == [
        ("expect_column_values_to_be_between", "touch_count"),
        ("expect_column_pair_values_a_to_be_greater_than_b", None),
    ]
    assert "order_id=ord_00004" in result.message() and "order_id=ord_00006" in result.message()


@pytest.mark.parametrize("table", sorted(GATED_TABLES))
def test_empty_table_fails_row_count(table: str) -> None:
    columns = json.loads(GATED_TABLES[table].read_text())["expectations"]
    required = [e["kwargs"]["column"] for e in columns if e["type"] == "expect_column_to_exist"]
    result = gate(table, pd.DataFrame({c: pd.Series([], dtype="str") for c in required}))
    assert not result.success
    assert result.failed[0].expectation == "expect_table_row_count_to_be_between"
    assert result.message().startswith(
        f"{table}: expect_table_row_count_to_be_between(min 1) failed"
    )


def test_renamed_column_names_the_missing_column() -> None:
    result = gate(
        "marts.fct_weekly_channel_spend", weekly_channel_spend().rename(columns={"spend": "cost"})
    )
    assert ("expect_column_to_exist", "spend") in failed_types(result)
    message = result.message()
    assert "expect_column_to_exist(spend) failed" in message and "the column is missing" in message
    assert "could not run for the missing column(s)" in message


def test_mmm_input_nulls_negative_spend_and_too_few_weeks() -> None:
    frame = mmm_weekly_input()
    frame.loc[3, "spend_tv"] = np.nan
    frame.loc[4, "spend_meta"] = -1.0
    result = gate("marts.mmm_weekly_input", frame)
    assert failed_types(result) == [
        ("expect_column_values_to_be_in_set", "_null_columns"),
        ("expect_column_values_to_be_in_set", "_negative_spend_columns"),
    ]
    assert "_null_columns=spend_tv" in result.message()
    assert "_negative_spend_columns=spend_meta" in result.message()

    short = mmm_weekly_input()
    short = short[short.week_start >= WEEKS[60]]  # 44 weeks
    result = gate("marts.mmm_weekly_input", short)
    assert failed_types(result) == [
        ("expect_column_unique_value_count_to_be_between", "week_start")
    ]
    assert "observed 44" in result.message()


def test_raw_meta_insights_negative_spend_and_missing_field() -> None:
    frame = raw_meta_insights()
    frame.loc[1, "spend"] = "-5.00"
    frame.loc[2, "campaign_id"] = None
    result = gate("raw.meta_insights", frame)
    assert failed_types(result) == [
        ("expect_column_values_to_not_be_null", "campaign_id"),
        ("expect_column_values_to_match_regex", "spend"),
    ]
    assert "_file=ads/meta/2025-01.json _line=2 spend=-5.00" in result.message()


# --------------------------------------------------------------------------- derived columns
def test_weeks_since_previous_known_answer() -> None:
    frame = pd.DataFrame({
        "week_start": pd.to_datetime(["2025-01-13", "2025-01-06", "2025-01-27", "2025-01-06", "2025-01-13", "2025-01-13"]),
        "geo": ["a", "a", "a", "b", "a", "b"],
    })  # fmt: skip
    by_geo = quality.weeks_since_previous(frame, {"date": "week_start", "by": ["geo"]}, {})
    assert by_geo.fillna(-1).tolist() == [1.0, -1, 2.0, -1, 1.0, 1.0]
    whole = quality.weeks_since_previous(frame, {"date": "week_start", "by": []}, {})
    assert whole.fillna(-1).tolist() == [1.0, -1, 2.0, -1, 1.0, 1.0]
    frame.loc[3, "week_start"] = pd.Timestamp("2025-01-20")
    whole = quality.weeks_since_previous(frame, {"date": "week_start", "by": []}, {})
    assert whole.fillna(-1).tolist() == [1.0, -1, 1.0, 1.0, 1.0, 1.0]


def test_ratio_to_trailing_median_ignores_off_weeks() -> None:
    spend = [0, 10, 0, 20, 0, 30, 100]
    frame = pd.DataFrame({
        "week_start": pd.date_range("2025-01-06", periods=len(spend), freq="W-MON"),
        "geo": "a", "channel": "tv", "spend": np.array(spend, dtype=float),
    })  # fmt: skip
    spec = {
        "value": "spend",
        "date": "week_start",
        "by": ["geo", "channel"],
        "weeks": 8,
        "min_nonzero_weeks": 2,
    }
    ratio = quality.ratio_to_trailing_median(frame, spec, {})
    # rows 0-3: fewer than 2 non-zero weeks before them -> not checked
    assert ratio.iloc[:4].isna().all()
    assert ratio.iloc[4] == 0.0  # off week: 0 / median(10, 20)
    assert ratio.iloc[5] == pytest.approx(30 / 15)
    assert ratio.iloc[6] == pytest.approx(100 / 20)


def test_path_has_unknown_channel() -> None:
    frame = pd.DataFrame({"path": _str(["meta > direct", "meta > unknown", "snapchat", "", None])})
    flags = quality.path_has_unknown_channel(
        frame,
        {"column": "path", "known": {"$PARAMETER": "known_channels"}},
        {"parameters": {"known_channels": ["meta", "direct", "unknown"]}},
    )
    assert flags.tolist()[:4] == [False, True, True, True]
    assert flags.isna().iloc[4]


# --------------------------------------------------------------------------- suites and docs
def test_suites_are_gx_suites_named_after_their_table() -> None:
    import great_expectations as gx

    assert {"marts.fct_weekly_channel_spend", "marts.fct_orders", "marts.fct_weekly_revenue",
            "marts.fct_conversion_journeys", "marts.mmm_weekly_input", "raw.meta_insights",
            "raw.stripe_events"} <= set(GATED_TABLES)  # fmt: skip
    for table, path in GATED_TABLES.items():
        data = json.loads(path.read_text())
        suite = gx.ExpectationSuite(
            name=data["name"], expectations=data["expectations"], meta=data["meta"]
        )
        assert suite.name == table == path.stem
        for spec in data["meta"]["derived_columns"]:
            assert spec["kind"] in quality.DERIVED_KINDS
        used = {e["kwargs"].get("column") for e in data["expectations"]}
        derived = {s["name"] for s in data["meta"]["derived_columns"]}
        assert derived <= used, f"{table}: helper columns without an expectation: {derived - used}"


def test_raw_suites_match_the_ingest_columns() -> None:
    from triangulate.ingest import SOURCES

    columns = {s.table: {*s.columns, "payload", "_file", "_line"} for s in SOURCES}
    for table, path in GATED_TABLES.items():
        if table.startswith("raw."):
            suite = json.loads(path.read_text())
            derived = {d["name"] for d in suite.get("meta", {}).get("derived_columns", [])}
            needed = {
                e["kwargs"]["column"] for e in suite["expectations"] if "column" in e["kwargs"]
            } - derived
            assert needed <= columns[table], f"{table}: {needed - columns[table]}"


def test_unknown_table_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=re.escape("no expectation suite for table 'marts.nope'")):
        validate_table("marts.nope", pd.DataFrame())


def test_data_docs_default_to_the_artifacts_folder(home: Path) -> None:
    frame = orders()
    frame.loc[2, "currency_original"] = "XYZ"
    result = validate_table("marts.fct_orders", frame, today=TODAY)
    docs = home / "artifacts" / "data_docs"
    assert result.data_docs_index == docs / "index.html" and result.data_docs_index.is_file()
    assert result.data_docs_page is not None and result.data_docs_page.is_file()
    assert docs in result.data_docs_page.parents
    page = result.data_docs_page.read_text()
    assert "marts.fct_orders" in page and "XYZ" in page
    assert result.data_docs_page.relative_to(docs).as_posix() in result.data_docs_index.read_text()
    assert str(result.data_docs_page) in result.summary_markdown()


def test_gate_result_metadata_is_plain_values() -> None:
    frame = weekly_revenue()
    frame.loc[0, "refunds"] = frame.loc[0, "gross_revenue"] + 1
    result = gate("marts.fct_weekly_revenue", frame)
    metadata = result.as_metadata()
    json.dumps(metadata)  # plain values only
    assert metadata["failed_expectations"] == len(result.failed) >= 2
    assert (
        "| expect_column_pair_values_a_to_be_greater_than_b(gross_revenue >= refunds) |"
        in metadata["summary"]
    )


# --------------------------------------------------------------------------- the simulated world
@pytest.fixture(scope="module")
def simulated_marts() -> dict[str, pd.DataFrame]:
    """Weekly spend and revenue of the small simulated world, shaped like the marts: the
    spend and revenue marts have no rows for zero spend or zero orders (dbt aggregates the
    rows that exist), the MMM input is zero-filled."""
    from triangulate.simulator import truth, world
    from triangulate.simulator.config import SCALES

    w = world.draw_world(SCALES["small"], 7)
    weekly = truth.weekly_incremental_revenue(w)
    spend = weekly[weekly.component != truth.BASELINE].rename(columns={"component": "channel"})
    spend = spend.assign(
        impressions=(spend.spend * 100).astype("int64"), clicks=(spend.spend).astype("int64")
    )
    spend = spend[["week_start", "geo", "channel", "spend", "impressions", "clicks"]].reset_index(
        drop=True
    )
    revenue = truth.weekly_revenue(w)
    wide = spend.pivot_table(
        index=["week_start", "geo"], columns="channel", values="spend"
    ).add_prefix("spend_")
    mmm = revenue.set_index(["week_start", "geo"])[["net_revenue"]].join(wide).reset_index()
    assert (spend.spend == 0).sum() > 1000 and (revenue.orders == 0).sum() > 0  # gaps exist
    return {
        "marts.fct_weekly_channel_spend": spend[spend.spend > 0].reset_index(drop=True),
        "marts.fct_weekly_revenue": revenue[revenue.orders > 0].reset_index(drop=True),
        "marts.mmm_weekly_input": mmm,
    }


@pytest.mark.parametrize(
    "table",
    ["marts.fct_weekly_channel_spend", "marts.fct_weekly_revenue", "marts.mmm_weekly_input"],
)
def test_simulated_world_passes(simulated_marts: dict[str, pd.DataFrame], table: str) -> None:
    result = gate(table, simulated_marts[table])
    assert result.success, result.message()
    assert result.n_rows == len(simulated_marts[table]) > 0


def test_data_docs_keep_only_the_newest_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quality, "DATA_DOCS_RUNS_KEPT", 2)
    pages = [
        validate_table(
            "marts.fct_weekly_revenue", weekly_revenue(), today=TODAY, data_docs_dir=tmp_path
        ).data_docs_page
        for _ in range(3)
    ]
    assert [p.is_file() for p in pages] == [False, True, True]
    runs = list((tmp_path / ".validation_results" / "marts" / "fct_weekly_revenue").glob("*/*"))
    assert len(runs) == 2
    index = (tmp_path / "index.html").read_text()
    assert pages[0].relative_to(tmp_path).as_posix() not in index
    assert pages[2].relative_to(tmp_path).as_posix() in index


def test_known_currencies_are_what_dbt_converts() -> None:
    """The FX reference's currencies plus its quote currency (dbt converts USD at 1 whether
    fx_rates.csv lists it or not); without an FX reference, the quote currency alone."""
    import duckdb

    assert quality.fx_quote_currency() == "USD"
    assert quality.load_parameters()["known_currencies"] == ["USD"]
    with duckdb.connect() as conn:
        assert quality.known_currencies(conn) == ["USD"]
        conn.execute("create schema raw")
        conn.execute(
            "create table raw.reference_fx_rates as select * from (values "
            "('2025-01-01', 'EUR', '1.1'), ('2025-01-01', ' gbp', '1.3'), ('2025-01-01', null, '1')"
            ") v(date, currency, usd_per_unit)"
        )
        assert quality.known_currencies(conn) == ["EUR", "GBP", "USD"]


def test_a_known_currencies_list_in_quality_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quality.yaml"
    path.write_text("parameters:\n  known_currencies: [EUR, GBP]\n")
    with pytest.raises(ValueError, match="currencies dbt converts"):
        quality.load_parameters(path)


def test_known_channels_cover_the_channel_rules() -> None:
    rules = pd.read_csv(PROJECT_ROOT / "dbt_project" / "seeds" / "channel_rules.csv")
    known = set(quality.load_parameters()["known_channels"])
    assert set(rules.channel) <= known, set(rules.channel) - known
    assert "unknown" not in known


@pytest.mark.parametrize("table", sorted(CLEAN))
def test_the_gate_reads_only_the_columns_its_suite_checks(table: str) -> None:
    columns = quality.suite_columns(table)
    frame = CLEAN[table]()
    if columns is None:  # a helper column reads whole rows or a column prefix
        assert table == "marts.mmm_weekly_input"
        return
    assert "payload" not in columns
    narrowed = frame[[c for c in frame.columns if c in columns]]
    assert len(narrowed.columns) < len(frame.columns) or set(frame.columns) <= set(columns)
    assert gate(table, narrowed).success


def test_read_table_reads_the_columns_that_exist() -> None:
    import duckdb

    from triangulate.warehouse import read_table

    with duckdb.connect() as conn:
        conn.execute("create schema raw")
        conn.execute("create table raw.t as select 1 as a, '{}' as payload, 2 as \"b c\"")
        frame = read_table(conn, "raw.t", columns=["b c", "a", "renamed"])
        assert list(frame.columns) == ["a", "b c"]
        assert list(read_table(conn, "raw.t").columns) == ["a", "payload", "b c"]
        conn.execute(
            "create table raw.f as select * from (values ('x', 1), ('y', 2), ('z', 3)) v(_file, n)"
        )
        rows = read_table(conn, "raw.f", columns=["n"], files=["x", "z"])
        assert sorted(rows["n"]) == [1, 3]
        assert read_table(conn, "raw.f", files=[]).empty


def test_a_raw_gate_validates_the_files_loaded_since_it_last_passed() -> None:
    from datetime import datetime

    import duckdb

    from dagster_project.assets.quality import DATA_QUALITY_TABLE, files_to_validate
    from triangulate.ingest import ensure_ledger

    with duckdb.connect() as conn:
        ensure_ledger(conn)
        conn.execute(
            "insert into raw._loaded_files values "
            "('events', 'events/a.ndjson', 1, 1, 'x', 5, '2026-01-01 10:00'), "
            "('events', 'events/b.ndjson', 1, 1, 'y', 5, '2026-01-02 10:00'), "
            "('events', 'events/c.ndjson', 1, 1, 'z', 5, '2026-01-03 10:00')"
        )
        # never checked: the whole table
        assert files_to_validate(conn, "raw.segment_events") is None
        conn.execute("create schema measurement")
        conn.execute(
            f"create table {DATA_QUALITY_TABLE} (table_name varchar, checked_at timestamp, "
            "success boolean, rows bigint, failed_expectations bigint, message varchar)"
        )
        gate = f"insert into {DATA_QUALITY_TABLE} values (?, ?, ?, 1, 0, '')"
        conn.execute(gate, ["raw.segment_events", datetime(2026, 1, 1, 11), True])
        assert files_to_validate(conn, "raw.segment_events") == [
            "events/b.ndjson",
            "events/c.ndjson",
        ]
        # a failed gate does not move the mark: b and c are checked again until one passes
        conn.execute(gate, ["raw.segment_events", datetime(2026, 1, 3, 11), False])
        assert files_to_validate(conn, "raw.segment_events") == [
            "events/b.ndjson",
            "events/c.ndjson",
        ]
        conn.execute(gate, ["raw.segment_events", datetime(2026, 1, 3, 12), True])
        assert files_to_validate(conn, "raw.segment_events") == []
        # no landing file at all for a source: nothing to check; a mart: the whole table
        assert files_to_validate(conn, "raw.tiktok_report") == []
        assert files_to_validate(conn, "marts.fct_orders") is None
