"""The reporting currency has one owner: dbt converts money once, into
``TRIANGULATE_CURRENCY`` as it is at build time (normalized in macros/money.sql), and
records it in ``marts.reporting_currency``; the report names that currency, never the
environment at report time."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.dbt_fixtures import world_tools
from tests.report_example import example_tables
from triangulate.report import build_report, build_report_from_warehouse
from triangulate.warehouse import replace_tables

FX = """\
date,currency,usd_per_unit
2026-03-02,EUR,1.10
2026-03-02,GBP,1.25
2026-03-03,EUR,1.12
2026-03-03,GBP,1.26
"""


def _home_with_fx(tmp_path: Path) -> Path:
    from triangulate import ingest

    home = tmp_path / "home"
    (home / "landing" / "reference").mkdir(parents=True)
    (home / "landing" / "reference" / "fx_rates.csv").write_text(FX)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        result = ingest.load_source(
            conn, ingest.SOURCES_BY_NAME["reference_fx_rates"], home / "landing"
        )
        result.raise_for_errors()
    return home


def test_a_lower_case_currency_converts_and_is_recorded(tmp_path: Path) -> None:
    home = _home_with_fx(tmp_path)
    world_tools.run_dbt(
        ["build", "--select", "+int_filled_fx_rates", "reporting_currency"],
        home,
        env={"TRIANGULATE_CURRENCY": "eur"},
    )
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        rates = conn.execute(
            "select currency, reporting_per_unit from intermediate.int_filled_fx_rates "
            "where rate_date = date '2026-03-02'"
        ).fetchall()
        recorded = conn.execute("select currency from marts.reporting_currency").fetchall()
    rates = dict(rates)
    assert rates, "the FX join found no rate in the reporting currency"
    assert rates["EUR"] == pytest.approx(1.0)
    assert rates["USD"] == pytest.approx(1 / 1.10)
    assert rates["GBP"] == pytest.approx(1.25 / 1.10)
    assert recorded == [("EUR",)]


def test_a_currency_that_is_not_an_iso_code_fails_the_build(tmp_path: Path) -> None:
    home = _home_with_fx(tmp_path)
    with pytest.raises(world_tools.DbtError, match="is not an ISO 4217 code"):
        world_tools.run_dbt(
            ["build", "--select", "reporting_currency"], home, env={"TRIANGULATE_CURRENCY": "euro"}
        )


def _warehouse(tmp_path: Path, currency: str | None) -> duckdb.DuckDBPyConnection:
    tables = example_tables()
    names = ["marts.fct_weekly_channel_spend", "marts.fct_weekly_revenue"]
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    present = {name: tables[name] for name in names}
    if currency:
        present["marts.reporting_currency"] = pd.DataFrame({"currency": [currency]})
    replace_tables(conn, present)
    return conn


def test_the_report_names_the_marts_currency_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIANGULATE_CURRENCY", "usd")  # set after the marts were built in EUR
    with _warehouse(tmp_path, "EUR") as conn:
        html = build_report_from_warehouse(conn, tmp_path / "reports", "r1").read_text()
    assert "money in EUR" in html
    assert "USD" not in html


def test_a_report_cannot_relabel_the_marts_money(tmp_path: Path) -> None:
    tables = example_tables()
    tables["marts.reporting_currency"] = pd.DataFrame({"currency": ["EUR"]})
    with pytest.raises(ValueError, match=r"marts hold money in EUR.*cannot show it as USD"):
        build_report(tables, tmp_path, run_id="r", currency="USD")
    path = build_report(tables, tmp_path, run_id="r", currency="eur")  # agrees: fine
    assert "money in EUR" in path.read_text()


def test_marts_of_unknown_currency_are_refused(tmp_path: Path) -> None:
    with (
        _warehouse(tmp_path, None) as conn,
        pytest.raises(ValueError, match=r"no marts\.reporting_currency.*rebuild the marts"),
    ):
        build_report_from_warehouse(conn, tmp_path / "reports", "r1")
