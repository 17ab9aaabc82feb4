"""The data-quality gates on Spark (issue #21): ``quality.validate_warehouse_table``
validates a Spark DataFrame with GX's Spark datasource (nothing collected to the driver but
the example rows), with the same results and messages as the pandas gates on DuckDB.

The same tables (money as DECIMAL, as dbt writes the marts) go into a local Spark warehouse
and into DuckDB; each gate runs on both and the results are compared whole."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.test_quality import (
    FX_CURRENCIES,
    WEEKS,
    conversion_journeys,
    mmm_weekly_input,
    orders,
    raw_meta_insights,
    weekly_channel_spend,
)
from triangulate import quality
from triangulate.contracts import MONEY_TYPE
from triangulate.warehouse import SCHEMAS, as_session, connect

pytestmark = pytest.mark.slow

TODAY = date(2026, 11, 23)
MONEY = {
    "marts.fct_weekly_channel_spend": ["spend"],
    "marts.fct_orders": ["gross_revenue", "refunded", "net_revenue"],
    "marts.fct_conversion_journeys": ["net_revenue"],
}


@pytest.fixture(scope="module")
def spark(spark_home):
    with connect() as session:
        assert session.engine == "spark"
        session.ensure_schemas(SCHEMAS)
        yield session


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    conn = duckdb.connect(str(tmp_path_factory.mktemp("duck") / "warehouse.duckdb"))
    session = as_session(conn)
    session.ensure_schemas(SCHEMAS)
    yield session
    conn.close()


def load(duck, spark, table: str, frame: pd.DataFrame) -> None:
    """``frame`` as ``table`` in both warehouses, in the same row order (Spark: one file),
    its money columns DECIMAL."""
    money = MONEY.get(table, [])
    duck.execute(f"drop table if exists {table}")
    with duck.registered("_incoming_frame", frame):
        casts = ", ".join(f"cast({c} as {MONEY_TYPE}) as {c}" for c in money)
        replace = f" replace ({casts})" if money else ""
        duck.execute(f"create table {table} as select *{replace} from _incoming_frame")
    from pyspark.sql import functions as F

    sdf = spark._frame(frame)
    sdf = sdf.select(
        *(
            F.col(c).cast(MONEY_TYPE).alias(c) if c in money else F.col(f"`{c}`")
            for c in sdf.columns
        )
    )
    spark.spark.sql(f"drop table if exists {table}")
    sdf.coalesce(1).write.format("parquet").saveAsTable(table)


def both(duck, spark, table: str, monkeypatch, **kwargs) -> tuple:
    """The gate of ``table`` on DuckDB and on Spark, and the frame types GX validated."""
    validated: list[str] = []
    run = quality._Gates.run

    def spy(self, name, frame, parameters):
        validated.append(type(frame).__module__.split(".")[0])
        return run(self, name, frame, parameters)

    monkeypatch.setattr(quality._Gates, "run", spy)
    kwargs["parameters"] = {"known_currencies": FX_CURRENCIES}
    on_duck = quality.validate_warehouse_table(duck, table, today=TODAY, data_docs=False, **kwargs)
    on_spark = quality.validate_warehouse_table(
        spark, table, today=TODAY, data_docs=False, **kwargs
    )
    print(f"{table}: duckdb {on_duck.seconds:.1f} s, spark {on_spark.seconds:.1f} s")
    return on_duck, on_spark, validated


def assert_same(on_duck: quality.GateResult, on_spark: quality.GateResult) -> None:
    assert (on_duck.datasource, on_spark.datasource) == ("pandas", "spark")
    assert [f.as_dict() for f in on_spark.failed] == [f.as_dict() for f in on_duck.failed]
    assert on_spark.message() == on_duck.message()
    assert on_spark.summary_markdown() == on_duck.summary_markdown()
    assert (on_spark.success, on_spark.n_rows, on_spark.n_expectations) == (
        on_duck.success,
        on_duck.n_rows,
        on_duck.n_expectations,
    )


def test_a_clean_table_passes_on_a_spark_dataframe(duck, spark, monkeypatch) -> None:
    table = "raw.meta_insights"
    load(duck, spark, table, raw_meta_insights())
    on_duck, on_spark, validated = both(duck, spark, table, monkeypatch)
    assert validated == ["pandas", "pyspark"]  # GX validated a Spark DataFrame on Spark
    assert on_spark.success, on_spark.message()
    assert_same(on_duck, on_spark)
    assert on_spark.message().startswith(f"{table}: all ")


def test_bad_weekly_spend_fails_the_same_on_both_engines(duck, spark, monkeypatch) -> None:
    """Negative spend, a geo's missing weeks, a spend spike and a duplicated row: the helper
    columns computed in Spark SQL give what pandas gives, and the example rows are the
    table's first offending rows although GX samples 20 of 24 and the helper columns'
    windows shuffled the rows."""
    frame = weekly_channel_spend()
    meta_501 = (frame.geo == "501") & (frame.channel == "meta")
    trailing = frame.loc[meta_501 & frame.week_start.between(WEEKS[32], WEEKS[39]), "spend"]
    frame.loc[meta_501 & (frame.week_start == WEEKS[40]), "spend"] = round(
        trailing.median() * 25, 2
    )
    negative = frame.index[(frame.geo == "602") & (frame.week_start.isin(WEEKS[20:28]))]
    frame.loc[negative, "spend"] = -120.0  # 24 rows: more than GX's sample of 20
    frame = frame[~((frame.geo == "803") & frame.week_start.isin(WEEKS[[30, 31]]))]
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)
    table = "marts.fct_weekly_channel_spend"
    load(duck, spark, table, frame)
    on_duck, on_spark, _ = both(duck, spark, table, monkeypatch)
    assert not on_spark.success
    assert_same(on_duck, on_spark)
    failed = {f.column or str(f.kwargs.get("column_list")): f for f in on_spark.failed}
    assert failed["spend"].unexpected_count == len(negative)
    assert failed["spend"].example_rows[0] == {
        "week_start": str(WEEKS[20].date()), "geo": "602", "channel": "meta", "spend": -120.0,
    }  # fmt: skip
    assert failed["_weeks_since_previous"].example_rows[0]["_weeks_since_previous"] == 3.0
    assert failed["_spend_vs_trailing_median"].example_rows[0][
        "_spend_vs_trailing_median"
    ] == pytest.approx(25.0, rel=1e-3)
    assert "['week_start', 'geo', 'channel']" in failed


def test_orders_residual_pairs_uniqueness_and_future_dates(duck, spark, monkeypatch) -> None:
    frame = orders()
    frame["ordered_at"] = frame["ordered_at"].dt.tz_localize(None)  # the mart's TIMESTAMP
    frame.loc[7, "refunded"] = frame.loc[7, "gross_revenue"] + 5  # refund > gross
    frame.loc[9, "net_revenue"] = frame.loc[9, "net_revenue"] + 3  # net != gross - refunded
    frame.loc[11, "ordered_at"] = pd.Timestamp("2027-01-05 10:30")  # in the future
    frame.loc[12, "currency_original"] = "XXX"
    frame = pd.concat([frame, frame.iloc[[17]]], ignore_index=True)  # duplicated order
    table = "marts.fct_orders"
    load(duck, spark, table, frame)
    on_duck, on_spark, _ = both(duck, spark, table, monkeypatch)
    assert not on_spark.success
    assert_same(on_duck, on_spark)
    assert len(on_spark.failed) >= 5, on_spark.message()
    assert "ordered_at=2027-01-05T10:30:00" in on_spark.message()


def test_journeys_with_unknown_channels(duck, spark, monkeypatch) -> None:
    frame = conversion_journeys()
    frame.loc[frame.index % 3 == 0, "path"] = "snapchat > direct"
    frame.loc[4, "first_touch_at"] = frame.loc[4, "converted_at"] + pd.Timedelta(days=1)
    table = "marts.fct_conversion_journeys"
    load(duck, spark, table, frame)
    on_duck, on_spark, _ = both(duck, spark, table, monkeypatch)
    assert not on_spark.success
    assert_same(on_duck, on_spark)
    assert "_path_has_unknown_channel" in on_spark.message()


def test_mmm_input_reads_every_column(duck, spark, monkeypatch) -> None:
    frame = mmm_weekly_input()
    frame.loc[3, "spend_tv"] = np.nan
    frame.loc[4, "spend_meta"] = -1.0
    table = "marts.mmm_weekly_input"
    load(duck, spark, table, frame)
    on_duck, on_spark, _ = both(duck, spark, table, monkeypatch)
    assert_same(on_duck, on_spark)
    assert "_null_columns=spend_tv" in on_spark.message()
    assert "_negative_spend_columns=spend_meta" in on_spark.message()


def test_a_raw_gate_on_the_files_to_check(duck, spark, monkeypatch, tmp_path) -> None:
    """Only the rows of the given landing files; the raw verdict's message is the same; the
    Spark run has its Data Docs page."""
    first = raw_meta_insights()
    first.loc[1, "spend"] = "-5.00"
    first.loc[2, "campaign_id"] = None
    second = raw_meta_insights().assign(_file="ads/meta/2025-02.json")
    second.loc[0, "spend"] = "oops"  # not checked: not one of the files
    table = "raw.meta_insights"
    load(duck, spark, table, pd.concat([first, second], ignore_index=True))
    files = ["ads/meta/2025-01.json"]
    on_duck, on_spark, _ = both(duck, spark, table, monkeypatch, files=files)
    assert on_spark.n_rows == len(first)
    assert_same(on_duck, on_spark)
    assert "_file=ads/meta/2025-01.json _line=2 spend=-5.00" in on_spark.message()
    verdicts = [quality.raw_gate_verdict(r, 1, 0.01) for r in (on_duck, on_spark)]
    assert verdicts[1].message() == verdicts[0].message()
    assert not verdicts[1].success
    with_docs = quality.validate_warehouse_table(
        spark, table, files=files, today=TODAY, data_docs_dir=tmp_path / "docs",
        parameters={"known_currencies": FX_CURRENCIES},
    )  # fmt: skip
    assert with_docs.message() == on_duck.message()
    assert with_docs.data_docs_page is not None and with_docs.data_docs_page.is_file()
