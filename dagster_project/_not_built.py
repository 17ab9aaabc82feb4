"""A plain refusal for commands whose capability is not built yet (no fake output)."""

import typer


def not_built(what: str, issue: int) -> None:
    typer.echo(f"triangulate: {what} is not built yet (see issue #{issue}).", err=True)
    raise typer.Exit(code=2)
