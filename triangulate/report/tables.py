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

from triangulate.contracts import TABLE_COLUMNS


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
MTA_CREDIT = "measurement.mta_channel_credit"
EXPERIMENTS = "measurement.geo_experiment_results"
TRIANGULATION = "measurement.triangulation"
DATA_QUALITY = "measurement.data_quality"

REPORT_TABLES: dict[str, ReportTable] = {
    t.name: t
    for t in (
        ReportTable(SPEND, TABLE_COLUMNS[SPEND]),
        ReportTable(REVENUE, TABLE_COLUMNS[REVENUE]),
        ReportTable(MMM_SUMMARY, TABLE_COLUMNS[MMM_SUMMARY]),
        ReportTable(MMM_CONTRIBUTIONS, TABLE_COLUMNS[MMM_CONTRIBUTIONS], ("component_kind",)),
        ReportTable(MMM_CURVES, TABLE_COLUMNS[MMM_CURVES]),
        ReportTable(MMM_DIAGNOSTICS, TABLE_COLUMNS[MMM_DIAGNOSTICS]),
        ReportTable(
            BUDGET_PLAN,
            TABLE_COLUMNS[BUDGET_PLAN],
            (
                "expected_contribution_change_hdi_low",
                "expected_contribution_change_hdi_high",
                "horizon_weeks",
            ),
        ),
        ReportTable(MTA_CREDIT, TABLE_COLUMNS[MTA_CREDIT]),
        ReportTable(EXPERIMENTS, TABLE_COLUMNS[EXPERIMENTS], ("interval_method", "interval_level")),
        ReportTable(TRIANGULATION, TABLE_COLUMNS[TRIANGULATION], ("mmm_mroas", "target_roas")),
        ReportTable(
            DATA_QUALITY, ("table_name", "checked_at", "success", "failed_expectations", "message")
        ),
    )
}
"""Warehouse name -> what the report needs from it (docs/contracts.md §5)."""

MMM_RUN_TABLES = (MMM_SUMMARY, MMM_CONTRIBUTIONS, MMM_CURVES, BUDGET_PLAN)
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
    """Read every report table from a DuckDB connection; a table not there yet is empty."""
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
    """The published run with the latest ``fitted_at`` in ``measurement.mmm_diagnostics``.

    Only published runs passed the convergence and accuracy gates, so only they are shown,
    even when a later run exists that failed its gates.
    """
    if diagnostics.empty:
        return MMMRunChoice(
            None, None, f"not available yet: materialize {REPORT_TABLES[MMM_DIAGNOSTICS].asset}"
        )
    published = diagnostics[as_bool(diagnostics["published"])]
    if published.empty:
        latest = diagnostics.assign(_t=pd.to_datetime(diagnostics["fitted_at"])).sort_values("_t")
        return MMMRunChoice(
            None,
            None,
            f"no published MMM run yet: none of the {len(diagnostics)} run(s) passed the gates "
            f"(latest: {latest['run_id'].iloc[-1]}); see Model diagnostics",
        )
    ordered = published.assign(_t=pd.to_datetime(published["fitted_at"])).sort_values(
        ["_t", "run_id"]
    )
    last = ordered.iloc[-1]
    return MMMRunChoice(str(last["run_id"]), pd.Timestamp(last["_t"]))


def rows_of_run(frame: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    """The rows of one MMM run (empty when there is no run to show)."""
    if frame.empty or run_id is None:
        return pd.DataFrame()
    return frame[frame["run_id"].astype(str) == run_id].reset_index(drop=True)
