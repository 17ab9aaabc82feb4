"""The ``triangulate`` command line (contracts.md §2).

Heavy libraries (pymc, dagster, duckdb) are imported inside commands, so ``--help``
answers fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dagster_project.geo.cli import geo_app
from dagster_project.mmm.cli import mmm_app
from dagster_project.mta.cli import mta
from dagster_project.receiver.cli import serve

app = typer.Typer(
    help="Triangulate: MTA, Bayesian MMM and geo experiments, reconciled in your warehouse.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve)
app.command("mta")(mta)
app.add_typer(geo_app, name="geo")
app.add_typer(mmm_app, name="mmm")


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory to write landing/ and truth/ into."),
    scale: str = typer.Option("small", "--scale", help="small | demo | full"),
    seed: int = typer.Option(42, "--seed", help="Random seed; same seed, same bytes."),
) -> None:
    """Write a synthetic world: DIR/landing/... in the landing formats, DIR/truth/ with the true effects."""
    from dagster_project.simulator import simulate_world

    summary = simulate_world(out, scale=scale, seed=seed, progress=True)
    typer.echo(summary.describe())


def _require_home() -> None:
    """Create the data directory or stop with a one-line error (no traceback, nothing written)."""
    from dagster_project.paths import ensure_home

    try:
        ensure_home()
    except OSError as exc:
        typer.echo(f"triangulate: {exc}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def run(
    select: str = typer.Option(
        "*", "--select", help="Dagster asset selection (default: everything)."
    ),
) -> None:
    """Materialize assets (the same job the schedules run)."""
    from dagster_project.runner import materialize_selection

    _require_home()
    ok = materialize_selection(select)
    raise typer.Exit(code=0 if ok else 1)


@app.command()
def demo(
    scale: str = typer.Option("demo", "--scale", help="small | demo | full"),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """Simulate into $TRIANGULATE_HOME, materialize every asset, print where the results are."""
    from dagster_project.runner import run_demo

    _require_home()
    raise typer.Exit(code=run_demo(scale=scale, seed=seed))


@app.command()
def report() -> None:
    """Rebuild the HTML report from the warehouse (artifacts/reports/report_<id>.html and latest.html)."""
    from datetime import UTC, datetime

    from dagster_project.paths import artifacts_dir, warehouse_path
    from dagster_project.report import build_report_from_warehouse
    from dagster_project.warehouse import connect

    if not warehouse_path().exists():
        typer.echo(
            f"no warehouse at {warehouse_path()}: run `triangulate demo` or `triangulate run` first",
            err=True,
        )
        raise typer.Exit(code=1)
    with connect(read_only=True) as conn:
        path = build_report_from_warehouse(
            conn, artifacts_dir() / "reports", run_id=datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        )
    typer.echo(f"report written: {path}")


if __name__ == "__main__":
    app()
