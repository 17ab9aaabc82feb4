"""`triangulate mta`: attribution on aggregated paths in ChannelAttribution's format.

Imported when ``triangulate --help`` runs, so pandas, duckdb and scipy load inside the
command only.
"""

from pathlib import Path
from typing import Annotated

import typer

PATH_MODEL_NAMES = "first_touch,last_touch,last_non_direct,linear,position_based,markov_1,markov_2,markov_3,shapley"
"""Default --models: every model that aggregated paths support (kept in step with
``triangulate.mta.engine.PATH_MODELS``, which a test checks)."""


def mta(
    paths: Annotated[
        Path, typer.Option("--paths", help="Aggregated paths CSV (ChannelAttribution format).")
    ],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models (default: every path model).")
    ] = PATH_MODEL_NAMES,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the credits to this CSV.")
    ] = None,
    direct_channel: Annotated[
        str, typer.Option("--direct-channel", help="Channel that last_non_direct passes over.")
    ] = "direct",
) -> None:
    """Multi-touch attribution on aggregated paths: credited conversions and revenue per model and channel."""
    from triangulate.mta.engine import attribute_paths
    from triangulate.mta.paths import AggregatedPathsError, read_aggregated_paths

    chosen = [m.strip() for m in models.split(",") if m.strip()]
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
