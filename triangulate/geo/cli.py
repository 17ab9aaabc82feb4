"""``triangulate geo analyze`` and ``triangulate geo design`` on any long panel CSV.

The panel is ``date, geo, value`` (daily or weekly), e.g. net revenue per geo per day;
``--date-column``, ``--geo-column`` and ``--value-column`` map a file's own names (GeoLift's
``date, location, Y``). Geos given on the command line match the panel's ignoring case; an
unknown one is named with its near matches. ``--metric`` names what the value is and
``--metric-kind`` whether it is money: results on conversions say ``incremental_conversions``
and cost per incremental conversion, not revenue and iROAS. Test lengths take days or
weeks (``--duration 28d`` or ``4w``).
numpy/pandas/scipy are imported inside the commands so ``triangulate --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

geo_app = typer.Typer(
    help="Geo experiments: analyse a test, design the next one.", no_args_is_help=True
)

METRIC_KINDS = ("auto", "money", "count")
"""``--metric-kind`` choices: ``auto`` and :data:`triangulate.geo.panel.METRIC_KINDS`
(spelled here so ``--help`` needs no pandas; tests/test_geo_cli.py checks they agree)."""


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in _split(text)]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint=option
        ) from None


def _columns(date_column: str, geo_column: str, value_column: str) -> dict[str, str]:
    return {"date": date_column, "geo": geo_column, "value": value_column}


def _labels(metric: str | None, metric_kind: str, value_column: str, default: str):
    """The metric's name (``--metric``, else a mapped ``--value-column``, else ``default``)
    and whether it is money."""
    from triangulate.geo.panel import MetricLabels

    if metric_kind not in METRIC_KINDS:
        raise typer.BadParameter("must be auto, money or count", param_hint="--metric-kind")
    name = metric or (value_column if value_column != "value" else default)
    return MetricLabels.of(name, metric_kind)


def _test_end(start: str, end: str | None, duration: str | None, days: int | None) -> str:
    """``--end``, or the last day of a test of ``--duration`` (28d, 4w) / ``--days`` from
    ``--start``; exactly one of them."""
    from triangulate.geo.design import parse_durations

    given = [name for name, v in (("--end", end), ("--duration", duration), ("--days", days)) if v]
    if len(given) != 1:
        raise typer.BadParameter(
            "give the test's last day (--end YYYY-MM-DD) or its length (--duration 28d / 4w, "
            f"or --days 28){'; got ' + ' and '.join(given) if given else ''}",
            param_hint="--end",
        )
    if end:
        return end
    try:
        weeks = parse_durations(duration) if duration else [days / 7]
        first = dt.date.fromisoformat(start)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from None
    if len(weeks) != 1:
        raise typer.BadParameter("one test length", param_hint="--duration")
    length = round(weeks[0] * 7)
    if abs(weeks[0] * 7 - length) > 1e-6:
        raise typer.BadParameter("a whole number of days", param_hint="--duration")
    return (first + dt.timedelta(days=length - 1)).isoformat()


def _kind(kind: str | None, spend_change: float | None, default: str | None = None) -> str:
    """``--kind`` (one of the registry's ``KINDS``), else derived from the sign of
    ``--spend-change``, else ``default``; without a default it is never guessed."""
    from triangulate.geo.registry import KINDS

    if kind is not None:
        if kind not in KINDS:
            raise typer.BadParameter(f"must be one of {', '.join(KINDS)}", param_hint="--kind")
        return kind
    if spend_change:
        return "holdout" if spend_change < 0 else "heavy_up"
    if default is not None:
        return default
    raise typer.BadParameter(
        "is this test a holdout (spend removed in the treatment geos) or a heavy-up (spend "
        "added)? Pass --kind holdout|heavy_up, or --spend-change (negative for a holdout)",
        param_hint="--kind",
    )


@geo_app.command()
def analyze(
    panel: Path = typer.Option(
        ..., "--panel", help="Long panel CSV with columns date, geo, value (see --*-column)."
    ),
    treated: str = typer.Option(
        ..., "--treated", help="Treatment geos, comma-separated (case-insensitive)."
    ),
    start: str = typer.Option(..., "--start", help="First day of the test (YYYY-MM-DD)."),
    end: str | None = typer.Option(
        None, "--end", help="Last day of the test (YYYY-MM-DD, inclusive); or --duration."
    ),
    duration: str | None = typer.Option(
        None, "--duration", help="Test length instead of --end: days or weeks, e.g. 28d or 4w."
    ),
    days: int | None = typer.Option(None, "--days", help="Test length in days instead of --end."),
    spend_change: float | None = typer.Option(
        None,
        "--spend-change",
        help="Total spend difference in the treatment geos over the test (negative for a holdout).",
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="holdout or heavy_up (default: from the sign of --spend-change; one is needed).",
    ),
    control: str | None = typer.Option(
        None, "--control", help="Control geos, comma-separated (default: every other geo)."
    ),
    experiment_id: str = typer.Option("cli", "--experiment-id", help="Id written to the results."),
    channel: str = typer.Option(
        "unknown", "--channel", help="Channel tested, written to the results."
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Name of the panel's metric, e.g. conversions (default: --value-column's name, "
        "else 'value').",
    ),
    metric_kind: str = typer.Option(
        "auto",
        "--metric-kind",
        help="money (incremental revenue, iROAS) or count (incremental <metric>, cost per "
        "incremental <metric>); auto: money when the name says revenue, sales, value, ...",
    ),
    date_column: str = typer.Option("date", "--date-column", help="The panel's date column."),
    geo_column: str = typer.Option("geo", "--geo-column", help="The panel's geo column."),
    value_column: str = typer.Option("value", "--value-column", help="The panel's metric column."),
    alpha: float = typer.Option(0.1, "--alpha", help="1 - interval level (0.1 = 90% intervals)."),
    out: Path | None = typer.Option(None, "--out", help="Write the result rows to this CSV."),
) -> None:
    """Analyse a geo test: synthetic control and DiD, conformal intervals, placebo checks, iROAS."""
    from triangulate.geo.analysis import analyze_experiment, format_results, relabel_results
    from triangulate.geo.panel import load_panel_csv

    labels = _labels(metric, metric_kind, value_column, "value")
    spec = {
        "id": experiment_id,
        "channel": channel,
        "kind": _kind(kind, spend_change),
        "treatment_geos": _split(treated),
        "control_geos": _split(control) or None,
        "start": start,
        "end": _test_end(start, end, duration, days),
        "metric": labels.metric,
    }
    try:
        long = load_panel_csv(panel, _columns(date_column, geo_column, value_column))
        results = analyze_experiment(spec, long, spend_change, alpha=alpha, labels=labels)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"triangulate geo analyze: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(format_results(results, labels))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        relabel_results(results, labels).to_csv(out, index=False)
        typer.echo(f"wrote {len(results)} rows to {out}")


def warehouse_revenue_panel():
    """The warehouse's zero-filled weekly net revenue per geo, as a long panel (read-only)."""
    from triangulate.geo.experiment_plan import revenue_panel
    from triangulate.paths import warehouse_path
    from triangulate.warehouse import connect, read_table, table_exists

    if not warehouse_path().exists():
        raise FileNotFoundError(
            f"no warehouse at {warehouse_path()}: pass --panel FILE.csv, or run `triangulate demo` "
            "/ `triangulate run` first"
        )
    with connect(read_only=True) as conn:
        if not table_exists(conn, "marts.fct_weekly_revenue_panel"):
            raise FileNotFoundError(
                "the warehouse has no marts.fct_weekly_revenue_panel yet: run `triangulate run` "
                "(or pass --panel FILE.csv)"
            )
        return revenue_panel(read_table(conn, "marts.fct_weekly_revenue_panel"))


@geo_app.command()
def design(
    panel: Path | None = typer.Option(
        None,
        "--panel",
        help="Long panel CSV with columns date, geo, value (see --*-column; default: the "
        "warehouse's marts.fct_weekly_revenue_panel, net revenue per geo and week).",
    ),
    n_treated: int = typer.Option(6, "--n-treated", help="Treatment geos per candidate group."),
    weeks: str = typer.Option("4", "--weeks", help="Test lengths in weeks, comma-separated."),
    duration: str | None = typer.Option(
        None,
        "--duration",
        help="Test lengths in days or weeks instead of --weeks, comma-separated: 28d,6w.",
    ),
    days: str | None = typer.Option(
        None, "--days", help="Test lengths in days instead of --weeks, comma-separated."
    ),
    effects: str = typer.Option(
        "0,1,2,3,5,7.5,10,15", "--effects", help="Effect sizes to simulate, % of the metric."
    ),
    spend_change: float | None = typer.Option(
        None,
        "--spend-change",
        help="Planned total spend difference (the budget of the test): reports the smallest "
        "detectable iROAS, or the largest detectable cost per outcome for a count metric.",
    ),
    cost_per_outcome: float | None = typer.Option(
        None,
        "--cost-per-outcome",
        help="Expected spend per incremental unit of a count metric (e.g. cost per "
        "conversion): reports the spend change needed to move the metric by the MDE.",
    ),
    expected_iroas: float | None = typer.Option(
        None,
        "--expected-iroas",
        help="Expected iROAS of a money metric: reports the spend change needed for the MDE.",
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="holdout or heavy_up (default: from the sign of --spend-change, else holdout).",
    ),
    treated: str | None = typer.Option(
        None,
        "--treated",
        help="Evaluate this group only (comma-separated) instead of random candidates.",
    ),
    candidates: int = typer.Option(20, "--candidates", help="Random candidate groups to rank."),
    include: str | None = typer.Option(
        None, "--include", help="Geos every candidate group must treat, comma-separated."
    ),
    exclude: str | None = typer.Option(
        None, "--exclude", help="Geos never to treat, comma-separated."
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Name of the panel's metric, e.g. conversions (default: --value-column's name, "
        "else 'value'; the warehouse panel is net_revenue).",
    ),
    metric_kind: str = typer.Option(
        "auto", "--metric-kind", help="money, count or auto (money when the name says so)."
    ),
    date_column: str = typer.Option("date", "--date-column", help="The panel's date column."),
    geo_column: str = typer.Option("geo", "--geo-column", help="The panel's geo column."),
    value_column: str = typer.Option("value", "--value-column", help="The panel's metric column."),
    alpha: float = typer.Option(0.1, "--alpha", help="Test level."),
    power: float = typer.Option(
        0.8, "--power", help="Power target for the minimum detectable effect."
    ),
    windows: int = typer.Option(8, "--windows", help="Past windows simulated per design."),
    seed: int = typer.Option(0, "--seed", help="Seed for candidate groups."),
    out: Path | None = typer.Option(None, "--out", help="Write the ranking to this CSV."),
) -> None:
    """Design a geo test: power, minimum detectable effect, market selection, spend needed."""
    from triangulate.geo.design import design_experiment, parse_durations
    from triangulate.geo.panel import load_panel_csv, to_wide

    kind = _kind(kind, spend_change, default="holdout")
    if treated and include:
        raise typer.BadParameter("--treated names the whole group already", param_hint="--include")
    if cost_per_outcome is not None and expected_iroas is not None:
        raise typer.BadParameter(
            "give one of --cost-per-outcome and --expected-iroas", param_hint="--expected-iroas"
        )
    labels = _labels(
        metric, metric_kind, value_column, "value" if panel is not None else "net_revenue"
    )
    if cost_per_outcome is not None and labels.money:
        raise typer.BadParameter(
            f"{labels.metric!r} is money: give --expected-iroas (or --metric-kind count)",
            param_hint="--cost-per-outcome",
        )
    if expected_iroas is not None and not labels.money:
        raise typer.BadParameter(
            f"{labels.metric!r} is a count: give --cost-per-outcome (or --metric-kind money)",
            param_hint="--expected-iroas",
        )
    cost_per_unit = cost_per_outcome
    if expected_iroas is not None:
        if not expected_iroas > 0:
            raise typer.BadParameter("must be positive", param_hint="--expected-iroas")
        cost_per_unit = 1.0 / expected_iroas
    lengths = [o for o, v in (("--duration", duration), ("--days", days)) if v]
    if len(lengths) > 1:
        raise typer.BadParameter("give one of --weeks, --duration and --days", param_hint="--days")
    try:
        if duration:
            test_weeks = parse_durations(duration, default_unit="w")
        elif days:
            test_weeks = parse_durations(days, default_unit="d")
        else:
            test_weeks = parse_durations(weeks, default_unit="w")
    except ValueError as exc:
        raise typer.BadParameter(
            str(exc), param_hint=lengths[0] if lengths else "--weeks"
        ) from None
    try:
        if panel is None:
            long, source = warehouse_revenue_panel(), "marts.fct_weekly_revenue_panel"
        else:
            columns = _columns(date_column, geo_column, value_column)
            long, source = load_panel_csv(panel, columns), str(panel)
        wide = to_wide(long, source=source)
        plan = design_experiment(
            wide,
            n_treated=n_treated,
            weeks=test_weeks,
            effects_pct=_floats(effects, "--effects"),
            spend_change=spend_change,
            kind=kind,
            candidates=[_split(treated)] if treated else None,
            n_candidates=candidates,
            exclude=_split(exclude),
            include=_split(include),
            alpha=alpha,
            power_target=power,
            n_windows=windows,
            seed=seed,
            labels=labels,
            cost_per_unit=cost_per_unit,
        )
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"triangulate geo design: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(plan.text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        plan.ranking_for_people().to_csv(out, index=False)
        typer.echo(f"wrote {len(plan.ranking)} candidate designs to {out}")
