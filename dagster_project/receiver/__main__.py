"""``python -m dagster_project.receiver``: the same as ``triangulate serve``."""

import typer

from dagster_project.receiver.cli import serve

typer.run(serve)
