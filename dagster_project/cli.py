"""The ``triangulate`` console script: the library's commands (``triangulate.cli``) plus
the two that run the pipeline through Dagster, ``run`` and ``demo``.

Heavy libraries (dagster, duckdb, pymc) are imported inside commands, so ``--help``
answers fast.
"""

from __future__ import annotations

import typer

from triangulate.cli import app


def _require_home() -> None:
    """Create the data directory or stop with a one-line error (no traceback, nothing written)."""
    from triangulate.paths import ensure_home

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


if __name__ == "__main__":
    app()
