"""The self-contained HTML report for marketers (issue 10). Pure Python, no dagster.

``build_report(tables, out_dir, run_id=...)`` writes ``report_<run_id>.html`` and
``latest.html``; ``load_report_tables(conn)`` reads its inputs from the warehouse;
``build_report_from_warehouse(conn, out_dir, run_id)`` does both. Importing this package
loads pandas and matplotlib: import it inside CLI commands, not at module top.
"""

from triangulate.report.build import (
    LATEST_NAME,
    build_report,
    build_report_from_warehouse,
    render_report,
    report_file_name,
)
from triangulate.report.sections import SECTION_IDS
from triangulate.report.tables import REPORT_TABLES, latest_published_run, load_report_tables

__all__ = [
    "LATEST_NAME",
    "REPORT_TABLES",
    "SECTION_IDS",
    "build_report",
    "build_report_from_warehouse",
    "latest_published_run",
    "load_report_tables",
    "render_report",
    "report_file_name",
]
