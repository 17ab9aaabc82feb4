"""The warehouse tables the report reads, and which MMM run it shows.

Every table is optional: a table that has not been materialized yet is an empty frame,
and the sections that need it say which asset to materialize. A table that is there but
lacks a required column is an error naming the table and the column, because a silently
wrong report is worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from triangulate.contracts import (
    BUDGET_PLAN_DETAIL_COLUMNS,
    DATA_QUALITY_COLUMNS,
    DATA_QUALITY_TABLE,
    TABLE_COLUMNS,
)
from triangulate.warehouse import CURRENCY_TABLE


@dataclass(frozen=True)
class ReportTable:
    """One input table: warehouse name, the columns the report uses, optional extras."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def asset(self) -> str:
        """The Dagster asset key that writes it, as the UI prints it (``schema/table``)."""
        return self.name.replace(".", "/")


SPEND = "marts.fct_weekly_channel_spend"
REVENUE = "marts.fct_weekly_revenue"
MMM_SUMMARY = "measurement.mmm_channel_summary"
MMM_CONTRIBUTIONS = "measurement.mmm_weekly_contributions"
MMM_CURVES = "measurement.mmm_response_curves"
MMM_DIAGNOSTICS = "measurement.mmm_diagnostics"
BUDGET_PLAN = "measurement.budget_plan"
BUDGET_SUMMARY = "measurement.budget_plan_summary"
MTA_CREDIT = "measurement.mta_channel_credit"
EXPERIMENTS = "measurement.geo_experiment_results"
TRIANGULATION = "measurement.triangulation"
DATA_QUALITY = DATA_QUALITY_TABLE
CURRENCY = CURRENCY_TABLE

REPORT_TABLES: dict[str, ReportTable] = {
    t.name: t
    for t in (
        ReportTable(SPEND, TABLE_COLUMNS[SPEND]),
        ReportTable(REVENUE, TABLE_COLUMNS[REVENUE]),
        ReportTable(MMM_SUMMARY, TABLE_COLUMNS[MMM_SUMMARY]),
        ReportTable(MMM_CONTRIBUTIONS, TABLE_COLUMNS[MMM_CONTRIBUTIONS], ("component_kind",)),
        ReportTable(MMM_CURVES, TABLE_COLUMNS[MMM_CURVES]),
        ReportTable(MMM_DIAGNOSTICS, TABLE_COLUMNS[MMM_DIAGNOSTICS]),
        ReportTable(BUDGET_PLAN, TABLE_COLUMNS[BUDGET_PLAN], BUDGET_PLAN_DETAIL_COLUMNS),
        ReportTable(BUDGET_SUMMARY, TABLE_COLUMNS[BUDGET_SUMMARY]),
        ReportTable(MTA_CREDIT, TABLE_COLUMNS[MTA_CREDIT]),
        ReportTable(EXPERIMENTS, TABLE_COLUMNS[EXPERIMENTS], ("interval_method", "interval_level")),
        ReportTable(TRIANGULATION, TABLE_COLUMNS[TRIANGULATION], ("mmm_mroas", "target_roas")),
        ReportTable(DATA_QUALITY, DATA_QUALITY_COLUMNS),
        ReportTable(CURRENCY, TABLE_COLUMNS[CURRENCY]),
    )
}
"""Warehouse name -> what the report needs from it (docs/contracts.md §5)."""

MMM_RUN_TABLES = (MMM_SUMMARY, MMM_CONTRIBUTIONS, MMM_CURVES, BUDGET_PLAN, BUDGET_SUMMARY)
"""Tables holding one set of rows per MMM run; the report shows one run from each."""


def check_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every report table, present or empty, after checking names and required columns.

    A key that is not a report table is a ``ValueError`` (a typo would otherwise leave
    a section empty); a table missing from ``tables`` becomes an empty frame.
    """
    unknown = sorted(set(tables) - set(REPORT_TABLES))
    if unknown:
        raise ValueError(
            f"unknown report table(s) {', '.join(unknown)}; expected warehouse names: "
            + ", ".join(REPORT_TABLES)
        )
    checked = {}
    for name, spec in REPORT_TABLES.items():
        frame = tables.get(name)
        if frame is None or frame.empty:
            checked[name] = pd.DataFrame()
            continue
        missing = [c for c in spec.required if c not in frame.columns]
        if missing:
            raise ValueError(
                f"table {name} lacks column(s) {', '.join(missing)}; "
                f"the report needs: {', '.join(spec.required)}"
            )
        checked[name] = frame.reset_index(drop=True)
    return checked


def load_report_tables(conn) -> dict[str, pd.DataFrame]:
    """Read every report table from a warehouse session; a table not there yet is empty."""
    from triangulate.warehouse import read_table, table_exists

    return {
        name: read_table(conn, name) if table_exists(conn, name) else pd.DataFrame()
        for name in REPORT_TABLES
    }


def as_bool(values: pd.Series) -> pd.Series:
    """Booleans from a column that may hold bools, 0/1 or the strings true/false."""
    if values.dtype == bool:
        return values
    text = values.astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0", "t", "yes"))


@dataclass(frozen=True)
class MMMRunChoice:
    """Which MMM run the report shows, and why (or why none)."""

    run_id: str | None
    fitted_at: pd.Timestamp | None
    why_none: str = ""


def latest_published_run(diagnostics: pd.DataFrame) -> MMMRunChoice:
    """The run :func:`triangulate.warehouse.latest_published_mmm_run` picks (the published
    run with the latest ``fitted_at``), applied to a ``measurement.mmm_diagnostics`` frame.

    Only published runs passed the convergence and accuracy gates, so only they are shown,
    even when a later run exists that failed its gates. The frame is handed to that one
    function through an in-memory warehouse session (DuckDB, whatever the warehouse's
    engine: the rule is portable SQL), so the report and the assets cannot disagree on
    which run is current.
    """
    from triangulate.warehouse import (
        MMM_DIAGNOSTICS_TABLE,
        latest_published_mmm_run,
        memory_session,
    )

    if diagnostics.empty:
        return MMMRunChoice(
            None, None, f"not available yet: materialize {REPORT_TABLES[MMM_DIAGNOSTICS].asset}"
        )
    runs = pd.DataFrame(
        {
            "run_id": diagnostics["run_id"].astype(str),
            "fitted_at": pd.to_datetime(diagnostics["fitted_at"]),
            "published": as_bool(diagnostics["published"]),
        }
    )
    with memory_session() as conn:
        conn.ensure_schemas([MMM_DIAGNOSTICS_TABLE.split(".")[0]])
        with conn.registered("_diagnostics", runs) as relation:
            conn.execute(f"create table {MMM_DIAGNOSTICS_TABLE} as select * from {relation}")
        run_id = latest_published_mmm_run(conn)
    if run_id is None:
        latest = runs.sort_values("fitted_at")
        return MMMRunChoice(
            None,
            None,
            f"no published MMM run yet: none of the {len(diagnostics)} run(s) passed the gates "
            f"(latest: {latest['run_id'].iloc[-1]}); see Model diagnostics",
        )
    fitted_at = runs.loc[runs["run_id"] == run_id, "fitted_at"].max()
    return MMMRunChoice(run_id, pd.Timestamp(fitted_at))


def currency_of(tables: Mapping[str, pd.DataFrame]) -> str | None:
    """The currency ``marts.reporting_currency`` records for the marts (dbt wrote it when it
    converted the money), or ``None`` when the table is absent or empty."""
    frame = tables.get(CURRENCY)
    if frame is None or frame.empty:
        return None
    codes = sorted({str(c).strip().upper() for c in frame["currency"].dropna()})
    if len(codes) != 1:
        raise ValueError(f"table {CURRENCY} must hold exactly one currency, found {codes}")
    return codes[0]


def rows_of_run(frame: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    """The rows of one MMM run (empty when there is no run to show)."""
    if frame.empty or run_id is None:
        return pd.DataFrame()
    return frame[frame["run_id"].astype(str) == run_id].reset_index(drop=True)
