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


def _fail(command: str, message: str, code: int) -> typer.Exit:
    """Print ``triangulate <command>: <message>`` on stderr (one line, no traceback)."""
    typer.echo(f"triangulate {command}: {message}", err=True)
    return typer.Exit(code=code)


@app.command()
def run(
    select: str = typer.Option(
        "*",
        "--select",
        help="Dagster asset selection, e.g. 'group:mix_model' or 'key:\"marts/fct_orders\"+' "
        "(default: everything).",
    ),
    list_: bool = typer.Option(False, "--list", help="List the groups and asset keys, and exit."),
) -> None:
    """Materialize assets (the same job the schedules run)."""
    from dagster_project.runner import CommandError, materialize_selection

    if list_:
        from dagster_project.definitions import defs
        from dagster_project.runner import valid_selections

        groups, keys = valid_selections(defs)
        typer.echo("\n".join([*groups, *keys]))
        return
    _require_home()
    try:
        ok = materialize_selection(select)
    except CommandError as exc:
        raise _fail("run", str(exc), exc.exit_code) from None
    raise typer.Exit(code=0 if ok else 1)


@app.command()
def demo(
    scale: str = typer.Option("demo", "--scale", help="small | demo | full"),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """Simulate into $TRIANGULATE_HOME, materialize every asset, print where the results are."""
    from triangulate.cli import check_scale

    check_scale("demo", scale)
    from dagster_project.runner import CommandError, run_demo

    _require_home()
    try:
        code = run_demo(scale=scale, seed=seed)
    except CommandError as exc:
        raise _fail("demo", str(exc), exc.exit_code) from None
    raise typer.Exit(code=code)


if __name__ == "__main__":
    app()
