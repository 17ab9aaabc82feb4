"""Write the report: one self-contained HTML file per run, plus ``latest.html``.

Self-contained means a marketer can e-mail the file or open it offline: plots are PNGs
embedded as base64 data URIs, the CSS is inline, and there are no scripts and no external
URLs. The file is written to a temporary name and renamed, so a reader never sees half a
report; ``latest.html`` is a copy (not a symlink) so it survives being copied elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import markupsafe
import pandas as pd

from triangulate.report.format import fmt_datetime
from triangulate.report.plots import channel_colors
from triangulate.report.sections import SECTION_BUILDERS, ReportContext, css_token
from triangulate.report.tables import (
    BUDGET_PLAN,
    CURRENCY,
    EXPERIMENTS,
    MMM_CURVES,
    MMM_DIAGNOSTICS,
    MMM_SUMMARY,
    MTA_CREDIT,
    SPEND,
    TRIANGULATION,
    check_tables,
    currency_of,
    latest_published_run,
    load_report_tables,
)

TEMPLATE = Path(__file__).with_name("report.html.j2")
LATEST_NAME = "latest.html"
DEFAULT_CURRENCY = "USD"
"""What frames handed in without ``marts.reporting_currency`` (and without ``currency=``)
are taken to hold: dbt's default when ``TRIANGULATE_CURRENCY`` is unset."""


def report_currency(tables: Mapping[str, pd.DataFrame], currency: str | None = None) -> str:
    """The currency the report names: the one the marts hold (``marts.reporting_currency``,
    recorded by dbt when it converted the money), never the environment at report time.

    ``currency`` is for frames that do not come with that table; given together with it,
    it must agree (a ``ValueError`` otherwise: a label cannot convert money). Neither:
    :data:`DEFAULT_CURRENCY`.
    """
    recorded = currency_of(tables)
    asked = currency.strip().upper() if currency else None
    if recorded and asked and recorded != asked:
        raise ValueError(
            f"the marts hold money in {recorded} ({CURRENCY}); a report cannot show it as "
            f"{asked}: money is converted once, by dbt, into TRIANGULATE_CURRENCY as it was "
            "when the marts were built; rebuild them (materialize the transform group) to change it"
        )
    return recorded or asked or DEFAULT_CURRENCY


def report_file_name(run_id: str) -> str:
    """``report_<run_id>.html``, with characters unsafe in file names replaced by ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not safe:
        raise ValueError(f"run_id {run_id!r} has no characters usable in a file name")
    return f"report_{safe}.html"


def _channels(tables: Mapping[str, pd.DataFrame], names: tuple[str, ...]) -> set[str]:
    """Every channel named in the given tables (absent tables contribute nothing)."""
    channels: set[str] = set()
    for name in names:
        if not tables[name].empty:
            channels |= set(tables[name]["channel"].dropna().astype(str))
    return channels


def report_channel_colors(tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """One colour per channel for every plot and table of a report.

    Paid channels (spend, MMM, budget plan) come first; channels only attribution or
    experiments know (``direct``, ``organic``, ...) take the next colours.
    """
    paid = _channels(tables, (SPEND, MMM_SUMMARY, MMM_CURVES, BUDGET_PLAN))
    others = _channels(tables, (MTA_CREDIT, EXPERIMENTS, TRIANGULATION))
    return channel_colors(paid, others)


def breakable(text: str) -> markupsafe.Markup:
    """``text`` escaped, with a line-break opportunity (``<wbr>``) after every ``_``, so a
    long identifier wraps in a narrow table cell; copied text is unchanged."""
    return markupsafe.Markup(str(markupsafe.escape(text)).replace("_", "_<wbr>"))


def _gate_and_horizon():
    """The MMM gate thresholds and plan horizon from mmm.yaml (None, 13 if it cannot be read)."""
    from triangulate.mmm.config import BudgetConfig, ConfigError, load_config

    try:
        config = load_config()
    except (ConfigError, OSError):
        return None, BudgetConfig().horizon_weeks
    return config.gate, config.budget.horizon_weeks


def render_report(
    tables: Mapping[str, pd.DataFrame],
    *,
    run_id: str,
    generated_at: datetime | None = None,
    currency: str | None = None,
) -> str:
    """The report's HTML as a string (see :func:`build_report` for the inputs)."""
    checked = check_tables(tables)
    gate, horizon = _gate_and_horizon()
    ctx = ReportContext(
        tables=checked,
        run=latest_published_run(checked[MMM_DIAGNOSTICS]),
        colors=report_channel_colors(checked),
        currency=report_currency(checked, currency),
        gate=gate,
        default_horizon_weeks=horizon,
    )
    sections = [build(ctx) for build in SECTION_BUILDERS]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["css_token"] = css_token
    env.filters["breakable"] = breakable
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        sections=sections,
        run_id=run_id,
        generated_at=fmt_datetime(generated_at or datetime.now(UTC)),
        currency=ctx.currency,
        channel_colors=ctx.colors,
    )


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_report(
    tables: Mapping[str, pd.DataFrame],
    out_dir: Path,
    *,
    run_id: str,
    generated_at: datetime | None = None,
    currency: str | None = None,
) -> Path:
    """Write ``out_dir/report_<run_id>.html`` and refresh ``out_dir/latest.html``; return the first.

    ``tables``: warehouse name (``"marts.fct_weekly_channel_spend"``, ...; see
    ``REPORT_TABLES``) -> frame with the contract columns. Missing or empty tables are
    fine: their sections say which asset to materialize. An unknown name or a missing
    column is a ``ValueError`` naming it. Money is labelled with the currency of
    ``marts.reporting_currency`` (see :func:`report_currency`; ``TRIANGULATE_CURRENCY`` is
    not read here).
    """
    html = render_report(tables, run_id=run_id, generated_at=generated_at, currency=currency)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / report_file_name(run_id)
    _write_atomically(path, html)
    latest_tmp = out_dir / f".{LATEST_NAME}.tmp"
    shutil.copyfile(path, latest_tmp)
    os.replace(latest_tmp, out_dir / LATEST_NAME)
    return path


def build_report_from_warehouse(
    conn, out_dir: Path, run_id: str, *, generated_at: datetime | None = None
) -> Path:
    """Read the report tables from a DuckDB connection and write the report (see above).

    A warehouse with marts but without ``marts.reporting_currency`` (marts built before it
    existed) is refused: their currency is unknown and a guessed label could be wrong.
    """
    tables = load_report_tables(conn)
    has_marts = any(name.startswith("marts.") and not frame.empty for name, frame in tables.items())
    if has_marts and currency_of(tables) is None:
        raise ValueError(
            f"the warehouse has marts but no {CURRENCY}, so their currency is unknown: "
            "rebuild the marts with dbt (materialize the transform group), then the report"
        )
    return build_report(tables, out_dir, run_id=run_id, generated_at=generated_at)
