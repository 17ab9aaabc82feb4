"""The public tables' column lists have one owner each (triangulate.contracts): the marts'
come from their dbt model ymls, the measurement tables' from contracts.py; every other
list is derived from those or checked against them here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from triangulate.contracts import (
    DATA_QUALITY_COLUMNS,
    DATA_QUALITY_TABLE,
    MARTS_MODELS_DIR,
    MEASUREMENT_COLUMNS,
    MONEY_COLUMNS,
    MONEY_TYPE,
    TABLE_COLUMNS,
    mart_columns,
)
from triangulate.paths import DBT_PROJECT_DIR


def _models(folder: Path) -> dict[str, dict]:
    models = {}
    for path in sorted(folder.glob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            models[model["name"]] = model
    return models


def test_mart_contract_columns_are_read_from_the_dbt_model_yml(tmp_path: Path) -> None:
    (tmp_path / "fct_things.yml").write_text(
        "version: 2\n"
        "models:\n"
        "  - name: fct_things\n"
        "    columns:\n"
        "      - name: thing_id\n"
        "        config: {meta: {public: true}}\n"
        "      - name: internal_note\n"
        "      - name: amount\n"
        "        config:\n"
        "          meta: {public: true}\n"
        "  - name: fct_private\n"
        "    columns:\n"
        "      - name: x\n"
    )
    assert mart_columns(tmp_path) == {"marts.fct_things": ("thing_id", "amount")}


COLUMNS_FROM_DATA = {"mmm_weekly_input"}
"""Marts whose columns follow the data (one control_<name> column per control landed), so
dbt cannot enforce a contract on them: their documented columns carry not_null tests
instead (a missing column fails the build)."""


def test_every_enforced_mart_publishes_typed_contract_columns() -> None:
    """Each mart with an enforced dbt contract has public columns (none silently dropped
    from the contract), and each public column has the type dbt enforces."""
    models = _models(MARTS_MODELS_DIR)
    enforced = {
        name
        for name, m in models.items()
        if ((m.get("config") or {}).get("contract") or {}).get("enforced")
    }
    marts = {t.split(".", 1)[1] for t in TABLE_COLUMNS if t.startswith("marts.")}
    assert marts == enforced | COLUMNS_FROM_DATA
    assert not enforced & COLUMNS_FROM_DATA
    for name in COLUMNS_FROM_DATA:
        for column in models[name]["columns"]:
            assert "not_null" in (column.get("data_tests") or []), (name, column["name"])
    for name in marts:
        typed = {c["name"]: c.get("data_type") for c in models[name]["columns"]}
        for column in TABLE_COLUMNS[f"marts.{name}"]:
            assert typed[column], f"marts.{name}.{column} has no data_type"
    assert TABLE_COLUMNS["marts.reporting_currency"] == ("currency",)


def test_python_lists_of_contract_columns_are_the_contract() -> None:
    from triangulate.geo.analysis import RESULT_COLUMNS
    from triangulate.mmm import outputs
    from triangulate.mta.engine import CHANNEL_CREDIT_COLUMNS
    from triangulate.report.tables import REPORT_TABLES
    from triangulate.triangulation import TRIANGULATION_COLUMNS

    assert list(TABLE_COLUMNS["measurement.mta_channel_credit"]) == CHANNEL_CREDIT_COLUMNS
    assert tuple(RESULT_COLUMNS) == TABLE_COLUMNS["measurement.geo_experiment_results"]
    assert list(TABLE_COLUMNS["measurement.mmm_diagnostics"]) == outputs.DIAGNOSTICS_COLUMNS
    for name, spec in REPORT_TABLES.items():
        if name in TABLE_COLUMNS:
            assert spec.required == TABLE_COLUMNS[name], name
    assert REPORT_TABLES[DATA_QUALITY_TABLE].required == DATA_QUALITY_COLUMNS
    # triangulate.triangulation writes the contract's columns plus mmm_mroas, in order
    contract = iter(TRIANGULATION_COLUMNS)
    assert all(c in contract for c in TABLE_COLUMNS["measurement.triangulation"])
    assert set(MEASUREMENT_COLUMNS) <= set(TABLE_COLUMNS)


def test_the_gates_expect_every_contract_column() -> None:
    """The GX suites of the public tables check (expect_column_to_exist) at least the
    contract's columns: a suite is data, so it is checked against the contract here."""
    from triangulate.quality import GATED_TABLES

    checked = 0
    for table, path in GATED_TABLES.items():
        if table not in TABLE_COLUMNS:
            continue
        suite = json.loads(path.read_text())
        exist = {
            e["kwargs"]["column"]
            for e in suite["expectations"]
            if e["type"] == "expect_column_to_exist"
        }
        missing = [c for c in TABLE_COLUMNS[table] if c not in exist]
        assert not missing, f"{path.name} does not expect contract column(s) {missing}"
        checked += 1
    assert checked >= 5


def _writer_columns() -> dict[str, tuple[str, ...]]:
    """Every column the code writes to each ``measurement.*`` table of MONEY_COLUMNS: the
    contract's, then the extra columns its writer adds (each list has one owner)."""
    from triangulate.geo.analysis import DIAGNOSTIC_COLUMNS, RESULT_COLUMNS
    from triangulate.mmm import outputs
    from triangulate.mta.engine import CAMPAIGN_CREDIT_COLUMNS, CONVERSION_SUMMARY_COLUMNS

    return {
        **{t: c for t, c in TABLE_COLUMNS.items() if t.startswith("measurement.")},
        "measurement.mta_campaign_credit": tuple(CAMPAIGN_CREDIT_COLUMNS),
        "measurement.mta_conversion_summary": tuple(CONVERSION_SUMMARY_COLUMNS),
        "measurement.budget_plan": tuple(outputs.BUDGET_PLAN_COLUMNS),
        "measurement.budget_plan_summary": tuple(outputs.BUDGET_PLAN_SUMMARY_COLUMNS),
        "measurement.geo_experiment_results": (*RESULT_COLUMNS, *DIAGNOSTIC_COLUMNS),
    }


RATIO = re.compile(r"roas|pct|share|p_value|factor|ratio|_of_")
"""Names of columns that are ratios, never money (ROAS, iROAS, mROAS, percentages)."""
LOOKS_LIKE_MONEY = re.compile(r"revenue|spend|contribution|^response|^expected_value|^value_hdi")


def test_every_money_column_is_a_column_its_table_has_and_no_ratio_is_money() -> None:
    writers = _writer_columns()
    for table, money in MONEY_COLUMNS.items():
        assert table in writers, f"{table} is not a measurement table Python writes"
        assert len(set(money)) == len(money), table
        unknown = [c for c in money if c not in writers[table]]
        assert not unknown, f"MONEY_COLUMNS[{table!r}] names {unknown}, not columns of the table"
        ratios = [c for c in money if RATIO.search(c)]
        assert not ratios, f"{table}: {ratios} are ratios, they stay DOUBLE"


def test_every_money_column_of_the_contract_tables_is_listed() -> None:
    """A new contract column holding money (by its name) is DECIMAL only if listed: this
    catches the one forgotten."""
    for table, columns in MEASUREMENT_COLUMNS.items():
        looks = [c for c in columns if LOOKS_LIKE_MONEY.search(c) and not RATIO.search(c)]
        missing = [c for c in looks if c not in MONEY_COLUMNS.get(table, ())]
        assert not missing, f"{table}: {missing} look like money but are not in MONEY_COLUMNS"


def _sql_type(text: str) -> str:
    """``numeric(28, 6)`` and ``DECIMAL(28,6)`` alike: DuckDB and PostgreSQL names agree."""
    return re.sub(r"\s+", "", text).upper().replace("NUMERIC", "DECIMAL")


def test_measurement_money_has_the_type_of_the_marts_money() -> None:
    """One money type in the warehouse: dbt's money_type() macro (the marts, through
    to_money(); one implementation per engine, dispatched), every numeric column of the
    marts' ymls, and contracts.MONEY_TYPE (what Python writes) agree."""
    macros = (DBT_PROJECT_DIR / "macros" / "money.sql").read_text()
    found = dict(
        re.findall(r"macro (\w+__)money_type\(\)\s*-?%\}(.*?)\{%-?\s*endmacro", macros, re.S)
    )
    assert {"default__", "spark__"} <= set(found), "macros/money.sql: money_type() per engine"
    for body in found.values():
        assert _sql_type(body) == _sql_type(MONEY_TYPE) == "DECIMAL(28,6)"
    for name, model in _models(MARTS_MODELS_DIR).items():
        for column in model.get("columns") or []:
            kind = _sql_type(column.get("data_type") or "")
            if kind.startswith("DECIMAL"):
                assert kind == _sql_type(MONEY_TYPE), (name, column["name"], kind)
