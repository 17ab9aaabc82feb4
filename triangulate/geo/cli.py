"""``triangulate geo analyze`` and ``triangulate geo design`` on any long panel CSV.

The panel is ``date, geo, value`` (daily or weekly), e.g. net revenue per geo per day.
numpy/pandas/scipy are imported inside the commands so ``triangulate --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

geo_app = typer.Typer(
    help="Geo experiments: analyse a test, design the next one.", no_args_is_help=True
)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in _split(text)]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint=option
        ) from None


@geo_app.command()
def analyze(
    panel: Path = typer.Option(
        ..., "--panel", help="Long panel CSV with columns date, geo, value."
    ),
    treated: str = typer.Option(..., "--treated", help="Treatment geos, comma-separated."),
    start: str = typer.Option(..., "--start", help="First day of the test (YYYY-MM-DD)."),
    end: str = typer.Option(..., "--end", help="Last day of the test (YYYY-MM-DD, inclusive)."),
    spend_change: float | None = typer.Option(
        None,
        "--spend-change",
        help="Total spend difference in the treatment geos over the test (negative for a holdout).",
    ),
    control: str | None = typer.Option(
        None, "--control", help="Control geos, comma-separated (default: every other geo)."
    ),
    experiment_id: str = typer.Option("cli", "--experiment-id", help="Id written to the results."),
    channel: str = typer.Option(
        "unknown", "--channel", help="Channel tested, written to the results."
    ),
    metric: str = typer.Option("value", "--metric", help="Name of the panel's metric."),
    alpha: float = typer.Option(0.1, "--alpha", help="1 - interval level (0.1 = 90% intervals)."),
    out: Path | None = typer.Option(None, "--out", help="Write the result rows to this CSV."),
) -> None:
    """Analyse a geo test: synthetic control and DiD, conformal intervals, placebo checks, iROAS."""
    from triangulate.geo.analysis import analyze_experiment, format_results
    from triangulate.geo.panel import load_panel_csv

    spec = {
        "id": experiment_id,
        "channel": channel,
        "kind": "holdout" if (spend_change or 0) < 0 else "heavy_up",
        "treatment_geos": _split(treated),
        "control_geos": _split(control) or None,
        "start": start,
        "end": end,
        "metric": metric,
    }
    try:
        results = analyze_experiment(spec, load_panel_csv(panel), spend_change, alpha=alpha)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"triangulate geo analyze: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(format_results(results))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.to_csv(out, index=False)
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
        help="Long panel CSV with columns date, geo, value (default: the warehouse's "
        "marts.fct_weekly_revenue_panel, net revenue per geo and week).",
    ),
    n_treated: int = typer.Option(6, "--n-treated", help="Treatment geos per candidate group."),
    weeks: str = typer.Option("4", "--weeks", help="Test lengths in weeks, comma-separated."),
    effects: str = typer.Option(
        "0,1,2,3,5,7.5,10,15", "--effects", help="Effect sizes to simulate, % of the metric."
    ),
    spend_change: float | None = typer.Option(
        None,
        "--spend-change",
        help="Planned total spend difference (to report the smallest detectable iROAS).",
    ),
    kind: str = typer.Option("holdout", "--kind", help="holdout or heavy_up."),
    treated: str | None = typer.Option(
        None,
        "--treated",
        help="Evaluate this group only (comma-separated) instead of random candidates.",
    ),
    candidates: int = typer.Option(20, "--candidates", help="Random candidate groups to rank."),
    exclude: str | None = typer.Option(
        None, "--exclude", help="Geos never to treat, comma-separated."
    ),
    alpha: float = typer.Option(0.1, "--alpha", help="Test level."),
    power: float = typer.Option(
        0.8, "--power", help="Power target for the minimum detectable effect."
    ),
    windows: int = typer.Option(8, "--windows", help="Past windows simulated per design."),
    seed: int = typer.Option(0, "--seed", help="Seed for candidate groups."),
    out: Path | None = typer.Option(None, "--out", help="Write the ranking to this CSV."),
) -> None:
    """Design a geo test: power, minimum detectable effect, market selection."""
    from triangulate.geo.design import design_experiment
    from triangulate.geo.panel import load_panel_csv, to_wide

    if kind not in ("holdout", "heavy_up"):
        raise typer.BadParameter("must be holdout or heavy_up", param_hint="--kind")
    try:
        if panel is None:
            long, source = warehouse_revenue_panel(), "marts.fct_weekly_revenue_panel"
        else:
            long, source = load_panel_csv(panel), str(panel)
        wide = to_wide(long, source=source)
        plan = design_experiment(
            wide,
            n_treated=n_treated,
            weeks=_floats(weeks, "--weeks"),
            effects_pct=_floats(effects, "--effects"),
            spend_change=spend_change,
            kind=kind,
            candidates=[_split(treated)] if treated else None,
            n_candidates=candidates,
            exclude=_split(exclude),
            alpha=alpha,
            power_target=power,
            n_windows=windows,
            seed=seed,
        )
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"triangulate geo design: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(plan.text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        plan.ranking.to_csv(out, index=False)
        typer.echo(f"wrote {len(plan.ranking)} candidate designs to {out}")
