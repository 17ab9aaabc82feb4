"""`triangulate mta`: attribution on aggregated paths in ChannelAttribution's format.

Imported when ``triangulate --help`` runs, so pandas, duckdb and scipy load inside the
command only. The models are those of :mod:`triangulate.mta.registry` (``--list-models``).
"""

from pathlib import Path
from typing import Annotated

import typer


def _list_models(value: bool) -> None:
    """``--list-models``: every registered model, where it runs and what it does."""
    if not value:
        return
    from triangulate.mta import registry

    for model in registry.models():
        where = "+".join(model.runs_on)
        typer.echo(f"{model.name:<18} {model.kind:<6} {where:<16} {model.description}")
    raise typer.Exit()


def mta(
    paths: Annotated[
        Path, typer.Option("--paths", help="Aggregated paths CSV (ChannelAttribution format).")
    ],
    models: Annotated[
        str,
        typer.Option(
            "--models",
            "--model",
            help="Comma-separated models (default: every model that runs on aggregated "
            "paths; --list-models names them).",
        ),
    ] = "",
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the credits to this CSV.")
    ] = None,
    direct_channel: Annotated[
        str, typer.Option("--direct-channel", help="Channel that last_non_direct passes over.")
    ] = "direct",
    list_models: Annotated[
        bool,
        typer.Option(
            "--list-models",
            is_eager=True,
            callback=_list_models,
            help="List the registered models (name, kind, where they run) and exit.",
        ),
    ] = False,
) -> None:
    """Multi-touch attribution on aggregated paths: credited conversions and revenue per model and channel."""
    from triangulate.mta.engine import attribute_paths
    from triangulate.mta.paths import AggregatedPathsError, read_aggregated_paths

    chosen = [m.strip() for m in models.split(",") if m.strip()] or None
    try:
        frame = read_aggregated_paths(paths)
        credit = attribute_paths(frame, models=chosen, direct_channel=direct_channel)
    except (AggregatedPathsError, ValueError) as error:
        typer.echo(f"triangulate mta: {error}", err=True)
        raise typer.Exit(code=2) from error

    typer.echo(
        f"{paths}: {len(frame)} paths, {frame['conversions'].sum():g} conversions, "
        f"{frame['revenue'].sum():,.2f} revenue, {frame['nulls'].sum():g} non-converting journeys"
    )
    typer.echo(credit.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        credit.to_csv(out, index=False)
        typer.echo(f"wrote {out}")
