"""``python -m triangulate.receiver``: the same as ``triangulate serve``."""

import typer

from triangulate.receiver.cli import serve

typer.run(serve)
