"""``triangulate sql "<query>"``: read the warehouse without an engine's own CLI.

The connection is read-only (DuckDB allows one writer; a reader never blocks or damages
a run's writes, and a statement that would write is refused), and every failure is one
line on stderr with a non-zero exit.
"""

from __future__ import annotations

import re
import sys

import typer

_LOCK = re.compile(r"Conflicting lock is held in .*? \(PID (?P<pid>\d+)\)")


def sql(
    query: str = typer.Argument(..., help='SQL to run, e.g. "show all tables".'),
    fmt: str = typer.Option("table", "--format", help="table | csv"),
) -> None:
    """Run one read-only SQL query on the warehouse and print its result."""
    from triangulate.warehouse import connect, engine_errors, exists, location

    def fail(message: str) -> typer.Exit:
        typer.echo(f"triangulate sql: {message}", err=True)
        return typer.Exit(code=1)

    if fmt not in ("table", "csv"):
        raise fail(f"unknown --format {fmt!r}: use table or csv")
    path = location()
    if not exists():
        raise fail(f"no warehouse at {path}: run `triangulate demo` or `triangulate run` first")
    try:
        with connect(read_only=True) as conn:
            frame = conn.statement(query)
    except (*engine_errors(), PermissionError) as exc:
        message = str(exc)
        lock = _LOCK.search(message)
        if lock:
            raise fail(
                f"warehouse {path} is being written by another process (PID {lock['pid']}): "
                "query again when its run has finished"
            ) from None
        first = next((line.strip() for line in message.splitlines() if line.strip()), "")
        if "read-only mode" in message:
            raise fail(
                f"the warehouse is opened read-only, so this statement cannot run ({first})"
            ) from None
        raise fail(first or type(exc).__name__) from None
    if frame is None:
        return
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    else:
        typer.echo(frame.to_string(index=False) if len(frame.columns) else "(no columns)")
