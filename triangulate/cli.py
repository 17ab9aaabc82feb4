"""The library's commands of the ``triangulate`` command line (docs/contracts.md §2):
simulate, serve, report, mta, geo, mmm. ``triangulate run`` and ``triangulate demo`` need the
orchestrator and are added by ``dagster_project.cli``, the console script's entry point.

Heavy libraries (pymc, dagster, duckdb) are imported inside commands, so ``--help``
answers fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from triangulate.geo.cli import geo_app
from triangulate.mmm.cli import mmm_app
from triangulate.mta.cli import mta
from triangulate.privacy import privacy_app
from triangulate.quarantine import quarantine_app
from triangulate.receiver.cli import serve
from triangulate.sql_cli import sql

app = typer.Typer(
    help="Triangulate: MTA, Bayesian MMM and geo experiments, reconciled in your warehouse.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve)
app.command("mta")(mta)
app.command("sql")(sql)
app.add_typer(geo_app, name="geo")
app.add_typer(mmm_app, name="mmm")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(privacy_app, name="privacy")


def check_scale(command: str, scale: str) -> None:
    """Stop with one line (exit 2) when ``--scale`` is not one of the simulator's scales."""
    from triangulate.simulator.config import SCALES

    if scale not in SCALES:
        typer.echo(
            f"triangulate {command}: unknown --scale {scale!r}: use one of {', '.join(SCALES)}",
            err=True,
        )
        raise typer.Exit(code=2)


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory to write landing/ and truth/ into."),
    scale: str = typer.Option("small", "--scale", help="small | demo | full"),
    seed: int = typer.Option(42, "--seed", help="Random seed; same seed, same bytes."),
) -> None:
    """Write a synthetic world: DIR/landing/... in the landing formats, DIR/truth/ with the true effects."""
    from triangulate.simulator import simulate_world

    check_scale("simulate", scale)
    summary = simulate_world(out, scale=scale, seed=seed, progress=True)
    typer.echo(summary.describe())


@app.command()
def report() -> None:
    """Rebuild the HTML report from the warehouse (artifacts/reports/report_<id>.html and latest.html)."""
    from datetime import UTC, datetime

    from triangulate.paths import artifacts_dir, warehouse_path
    from triangulate.report import build_report_from_warehouse
    from triangulate.warehouse import connect

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
