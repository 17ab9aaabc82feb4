"""`triangulate serve`: run the webhook and event receiver on uvicorn.

Imports uvicorn, starlette and stripe inside the command, so ``triangulate --help``
stays fast.
"""

from __future__ import annotations

import typer

DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    rotate_bytes: int = typer.Option(
        DEFAULT_ROTATE_BYTES, help="Seal a landing file once it would pass this many bytes."
    ),
    rotate_seconds: float = typer.Option(
        60.0, help="Seal a landing file this many seconds after it was opened."
    ),
    log_level: str = typer.Option("info", help="debug | info | warning | error"),
) -> None:
    """Run the webhook and event receiver (needs at least one of STRIPE_WEBHOOK_SECRET, SHOPIFY_WEBHOOK_SECRET, SEGMENT_WRITE_KEY; connection limits from TRIANGULATE_RECEIVER_*)."""
    from triangulate.paths import ensure_home
    from triangulate.receiver.settings import MissingSecretsError, settings_from_env

    if log_level.lower() not in LOG_LEVELS:
        typer.echo(
            f"triangulate serve: --log-level must be one of {', '.join(LOG_LEVELS)}", err=True
        )
        raise typer.Exit(code=2)
    try:
        settings = settings_from_env(rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds)
        ensure_home(settings.home)
    except (MissingSecretsError, OSError, ValueError) as exc:
        typer.echo(f"triangulate serve: {exc}", err=True)
        raise typer.Exit(code=2) from None

    import uvicorn

    from triangulate.receiver.app import create_app
    from triangulate.receiver.connections import receiver_server_config
    from triangulate.receiver.logs import configure_logging

    configure_logging(log_level, settings.secrets())
    server = uvicorn.Server(
        receiver_server_config(
            settings,
            create_app(settings),
            host=host,
            port=port,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    )
    server.run()
    if not server.started:  # as uvicorn.run: the port was taken, or startup failed
        raise typer.Exit(code=3)
