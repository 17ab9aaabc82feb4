"""triangulate.warehouse as the one owner of: writing the gate log, which MMM run is the
published one, and which currency the marts hold."""

from __future__ import annotations

from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest

from triangulate.contracts import DATA_QUALITY_COLUMNS, DATA_QUALITY_TABLE
from triangulate.warehouse import (
    append_rows,
    latest_published_mmm_run,
    replace_table,
    reporting_currency,
    table_exists,
)


def test_append_rows_creates_appends_and_refuses_other_columns() -> None:
    with duckdb.connect() as conn:
        first = pd.DataFrame({"a": [1], "b": ["x"]})
        assert append_rows(conn, "measurement.log", first) == 1
        assert append_rows(conn, "measurement.log", first.assign(a=2)) == 1
        with pytest.raises(
            ValueError, match=r"measurement\.log: columns \['b', 'a'\] do not match"
        ):
            append_rows(conn, "measurement.log", first[["b", "a"]].assign(a=3))
        rows = conn.execute("select a, b from measurement.log order by a").fetchall()
    assert rows == [(1, "x"), (2, "x")]


def _gate(table: str, success: bool, n_rows: int, failed: int):
    """The parts of a quality.GateResult record_gate reads."""
    return SimpleNamespace(
        table=table, success=success, n_rows=n_rows, failed=[None] * failed,
        message=lambda: f"{failed} failed",
    )  # fmt: skip


def test_record_gate_appends_contract_rows_and_never_misaligns_columns() -> None:
    from dagster_project.assets.quality import record_gate

    with duckdb.connect() as conn:
        record_gate(conn, _gate("marts.fct_orders", False, 120, 2))
        record_gate(conn, _gate("marts.fct_orders", True, 130, 0))
        log = conn.execute(f"select * from {DATA_QUALITY_TABLE}").df()
        assert tuple(log.columns) == DATA_QUALITY_COLUMNS
        assert log["rows"].tolist() == [120, 130]
        assert log["failed_expectations"].tolist() == [2, 0]

        # a log an older version created with its columns in another order: inserting by
        # position would swap `rows` and `failed_expectations` without a word
        conn.execute(
            f"create or replace table {DATA_QUALITY_TABLE} (table_name varchar, checked_at timestamp, "
            "success boolean, failed_expectations bigint, rows bigint, message varchar)"
        )
        with pytest.raises(ValueError, match=r"measurement\.data_quality: columns .* do not match"):
            record_gate(conn, _gate("marts.fct_orders", True, 140, 0))


def _diagnostics(conn, rows: list[tuple[str, str, bool]]) -> None:
    frame = pd.DataFrame(rows, columns=["run_id", "fitted_at", "published"])
    frame["fitted_at"] = pd.to_datetime(frame["fitted_at"])
    replace_table(conn, "measurement.mmm_diagnostics", frame)


def test_latest_published_mmm_run_is_one_rule_for_assets_and_report() -> None:
    from dagster_project.assets.triangulation import latest_published_mmm_run as asset_alias
    from triangulate.report import latest_published_run

    rows = [
        ("run-a", "2026-01-01", True),
        ("run-c", "2026-02-01", True),  # same fit time as run-b: the larger id wins
        ("run-b", "2026-02-01", True),
        ("run-d", "2026-03-01", False),  # later, but refused by the gate
    ]
    with duckdb.connect() as conn:
        assert latest_published_mmm_run(conn) is None  # no table yet
        _diagnostics(conn, rows)
        assert latest_published_mmm_run(conn) == "run-c"
        assert asset_alias(conn) == "run-c"
        frame = conn.execute("select * from measurement.mmm_diagnostics").df()
        # the report applies the same function to the frame, whatever its row order
        for order in (frame, frame.iloc[::-1], frame.sample(frac=1.0, random_state=1)):
            choice = latest_published_run(order.reset_index(drop=True))
            assert choice.run_id == "run-c"
            assert choice.fitted_at == pd.Timestamp("2026-02-01")
        _diagnostics(conn, [(r, t, False) for r, t, _ in rows])
        assert latest_published_mmm_run(conn) is None


def test_reporting_currency_is_what_dbt_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIANGULATE_CURRENCY", "USD")
    with duckdb.connect() as conn:
        with pytest.raises(LookupError, match=r"marts\.reporting_currency does not exist"):
            reporting_currency(conn)
        replace_table(conn, "marts.reporting_currency", pd.DataFrame({"currency": ["EUR"]}))
        assert reporting_currency(conn) == "EUR"


def test_latest_views_show_the_latest_published_run_and_follow_new_ones(tmp_path) -> None:
    """measurement.latest_<table>: SQL consumers get the published run without the rule."""
    from triangulate.warehouse import publish_run

    def diagnostics(run: str, fitted: str, published: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {"run_id": [run], "fitted_at": [pd.Timestamp(fitted)], "published": [published]}
        )

    def plan(run: str, spend: float) -> pd.DataFrame:
        return pd.DataFrame({"run_id": run, "channel": ["tv", "meta"], "current_spend": spend})

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        for run, fitted, published, spend in (
            ("a", "2026-01-01", True, 1.0),
            ("b", "2026-01-08", True, 2.0),
            ("c", "2026-01-15", False, 3.0),  # newer, but refused by the gate
        ):
            publish_run(
                conn,
                run,
                {
                    "measurement.mmm_diagnostics": diagnostics(run, fitted, published),
                    "measurement.budget_plan": plan(run, spend),
                },
            )
        view = conn.execute("select * from measurement.latest_budget_plan").df()
        assert set(view["run_id"]) == {"b"} and len(view) == 2
        latest = conn.execute("select run_id from measurement.latest_mmm_diagnostics").df()
        assert list(latest["run_id"]) == ["b"]
        publish_run(
            conn,
            "d",
            {
                "measurement.mmm_diagnostics": diagnostics("d", "2026-01-22", True),
                "measurement.budget_plan": plan("d", 4.0),
            },
        )
        view = conn.execute("select distinct run_id from measurement.latest_budget_plan").df()
        assert list(view["run_id"]) == ["d"]


def test_publish_run_adds_a_newer_versions_columns_and_refuses_anything_else(tmp_path) -> None:
    """A table published by an older version keeps its runs when a newer version adds
    columns at the end (NULL for the old rows); a frame with other columns is refused and
    nothing of that run is written (all or nothing)."""
    from triangulate.warehouse import publish_run

    old = pd.DataFrame({"run_id": ["a"], "channel": ["tv"], "spend": [1.0]})
    new = pd.DataFrame({"run_id": ["b"], "channel": ["tv"], "spend": [2.0], "decision": ["hold"]})
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        publish_run(conn, "a", {"measurement.budget_plan": old})
        publish_run(conn, "b", {"measurement.budget_plan": new})
        rows = conn.execute("select * from measurement.budget_plan order by run_id").df()
        assert list(rows.columns) == ["run_id", "channel", "spend", "decision"]
        assert rows["decision"].isna().tolist() == [True, False]
        swapped = new.assign(run_id="c")[["run_id", "spend", "channel", "decision"]]
        with pytest.raises(ValueError, match=r"measurement\.budget_plan: columns"):
            publish_run(
                conn,
                "c",
                {
                    "measurement.mmm_diagnostics": pd.DataFrame({"run_id": ["c"]}),
                    "measurement.budget_plan": swapped,
                },
            )
        assert conn.execute("select count(*) from measurement.budget_plan").fetchone()[0] == 2
        assert not table_exists(conn, "measurement.mmm_diagnostics")


def _types(conn, qualified: str) -> dict[str, str]:
    schema, table = qualified.split(".")
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return dict(rows)


def _summary(run: str, spend: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": [run, run],
            "channel": ["tv", "meta"],
            "spend": [0.1 + 0.2, spend],
            "contribution": [1234.5600000001, float("nan")],
            "roas": [0.1 + 0.2, 1 / 3],
            "mroas": [2 / 3, 0.5],
        }
    )


def test_money_is_written_as_decimal_and_ratios_stay_double(tmp_path) -> None:
    """Money columns (contracts.MONEY_COLUMNS) land as MONEY_TYPE whichever way a table is
    written, ratios stay DOUBLE, and readers get floats back."""
    from decimal import Decimal

    from triangulate.contracts import MONEY_COLUMNS, MONEY_TYPE
    from triangulate.warehouse import publish_run, read_table, replace_tables

    assert MONEY_TYPE == "DECIMAL(28,6)"
    assert MONEY_COLUMNS["measurement.mmm_channel_summary"][:2] == ("spend", "contribution")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        replace_tables(conn, {"measurement.mmm_channel_summary": _summary("a", 5.0)})
        publish_run(conn, "b", {"measurement.budget_plan": pd.DataFrame(
            {"run_id": ["b"], "channel": ["tv"], "current_spend": [0.1 + 0.2]}
        )})  # fmt: skip
        append_rows(conn, "measurement.mta_channel_credit", pd.DataFrame(
            {"model": ["last_touch"], "channel": ["tv"], "conversions": [0.1 + 0.2],
             "revenue": [0.1 + 0.2]}
        ))  # fmt: skip
        summary = _types(conn, "measurement.mmm_channel_summary")
        assert summary == {
            "run_id": "VARCHAR", "channel": "VARCHAR", "spend": MONEY_TYPE,
            "contribution": MONEY_TYPE, "roas": "DOUBLE", "mroas": "DOUBLE",
        }  # fmt: skip
        assert _types(conn, "measurement.budget_plan")["current_spend"] == MONEY_TYPE
        credit = _types(conn, "measurement.mta_channel_credit")
        assert (credit["revenue"], credit["conversions"]) == (MONEY_TYPE, "DOUBLE")
        stored = conn.execute(
            "select spend, contribution, roas from measurement.mmm_channel_summary "
            "where channel = 'tv'"
        ).fetchall()
        assert stored == [(Decimal("0.30"), Decimal("1234.56"), 0.1 + 0.2)]
        assert conn.execute("select current_spend from measurement.budget_plan").fetchall() == [
            (Decimal("0.3"),)
        ]
        # NaN is NULL, as for any float
        assert conn.execute(
            "select count(*) from measurement.mmm_channel_summary where contribution is null"
        ).fetchall() == [(1,)]
        frame = read_table(conn, "measurement.mmm_channel_summary")
        assert frame["spend"].dtype == "float64" and frame["contribution"].dtype == "float64"
        assert frame["spend"].tolist() == [0.3, 5.0]
        # a publish adding a money column at the end adds it as money
        publish_run(conn, "c", {"measurement.budget_plan": pd.DataFrame(
            {"run_id": ["c"], "channel": ["tv"], "current_spend": [1.0],
             "recommended_spend": [1.25]}
        )})  # fmt: skip
        assert _types(conn, "measurement.budget_plan")["recommended_spend"] == MONEY_TYPE
        # infinity is no amount: a clear error naming the column, nothing written
        with pytest.raises(ValueError, match=r"mmm_channel_summary\.spend: 1 money value"):
            replace_tables(conn, {"measurement.mmm_channel_summary": _summary("d", float("inf"))})
        assert read_table(conn, "measurement.mmm_channel_summary")["run_id"].tolist() == [
            "a",
            "a",
        ]


def test_a_table_written_with_double_money_is_converted_keeping_every_row(tmp_path) -> None:
    """A warehouse from before money was DECIMAL: the next publication converts the money
    columns in its own transaction, every stored amount kept (and its latest_* view still
    reads); a column holding an amount DECIMAL cannot hold keeps its type, and new rows
    are cast to it; a failed publication converts nothing."""
    from decimal import Decimal

    from triangulate.contracts import MONEY_TYPE
    from triangulate.warehouse import publish_run, read_table

    def diagnostics(run: str) -> pd.DataFrame:
        fitted = pd.Timestamp("2026-01-08" if run == "new" else "2026-01-01")
        return pd.DataFrame({"run_id": [run], "fitted_at": [fitted], "published": [True]})

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("create schema measurement")
        conn.execute(
            "create table measurement.mmm_channel_summary as select * from (values "
            "('old', 'tv', 0.1::double + 0.2::double, 1234.5600000001::double, 0.5::double)) "
            "as t(run_id, channel, spend, contribution, roas)"
        )
        conn.execute(
            "create table measurement.budget_plan as select * from (values "
            "('old', 'tv', 'inf'::double), ('old', 'meta', 2.5::double)) "
            "as t(run_id, channel, current_spend)"
        )
        conn.execute(
            "create table measurement.mmm_diagnostics as select 'old' as run_id, "
            "timestamp '2025-01-01' as fitted_at, true as published"
        )
        publish_run(conn, "old", {"measurement.mmm_diagnostics": diagnostics("old")})
        assert _types(conn, "measurement.mmm_channel_summary")["spend"] == "DOUBLE"

        # a publication refused (budget_plan's columns differ) converts nothing
        bad_plan = pd.DataFrame({"run_id": ["new"], "current_spend": [1.0], "channel": ["tv"]})
        with pytest.raises(ValueError, match=r"measurement\.budget_plan: columns"):
            publish_run(conn, "new", {
                "measurement.mmm_channel_summary": _summary("new", 5.0)[
                    ["run_id", "channel", "spend", "contribution", "roas"]
                ],
                "measurement.budget_plan": bad_plan,
            })  # fmt: skip
        assert _types(conn, "measurement.mmm_channel_summary")["spend"] == "DOUBLE"

        plan = pd.DataFrame({"run_id": ["new"], "channel": ["tv"], "current_spend": [0.1 + 0.2]})
        publish_run(conn, "new", {
            "measurement.mmm_diagnostics": diagnostics("new"),
            "measurement.mmm_channel_summary": _summary("new", 5.0)[
                ["run_id", "channel", "spend", "contribution", "roas"]
            ],
            "measurement.budget_plan": plan,
        })  # fmt: skip
        summary = _types(conn, "measurement.mmm_channel_summary")
        assert (summary["spend"], summary["contribution"]) == (MONEY_TYPE, MONEY_TYPE)
        assert summary["roas"] == "DOUBLE"
        old = conn.execute(
            "select spend, contribution, roas from measurement.mmm_channel_summary "
            "where run_id = 'old'"
        ).fetchall()
        assert old == [(Decimal("0.3"), Decimal("1234.56"), 0.5)]
        assert len(read_table(conn, "measurement.mmm_channel_summary")) == 3
        assert conn.execute(
            "select count(*) from measurement.latest_mmm_channel_summary"
        ).fetchall() == [(2,)]
        # the stored infinity does not fit DECIMAL: the column stays DOUBLE, all rows kept
        assert _types(conn, "measurement.budget_plan")["current_spend"] == "DOUBLE"
        rows = conn.execute(
            "select run_id, channel, current_spend from measurement.budget_plan order by all"
        ).fetchall()
        assert rows == [
            ("new", "tv", 0.3),
            ("old", "meta", 2.5),
            ("old", "tv", float("inf")),
        ]
