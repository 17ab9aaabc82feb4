"""`triangulate mta`: attribution on aggregated paths in ChannelAttribution's format.

Imported when ``triangulate --help`` runs, so pandas, duckdb and scipy load inside the
command only. The models are those of :mod:`triangulate.mta.registry` (``--list-models``).

The file's delimiter is sniffed (``,``, ``;``, tab or ``|``; ChannelAttribution's own
``Data.csv`` is ``;``-separated) unless ``--sep`` names it. ``--format table`` (default)
prints for people, numbers with thousands separators; ``csv`` and ``json`` print only the
credit table on stdout, plain numbers, for scripts (the summary line goes to stderr).
"""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

SNIFFED_DELIMITERS = ",;\t|"
"""Delimiters ``--paths`` recognises without ``--sep``."""


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _list_models(value: bool) -> None:
    """``--list-models``: every registered model, where it runs and what it does."""
    if not value:
        return
    from triangulate.mta import registry

    for model in registry.models():
        where = "+".join(model.runs_on)
        typer.echo(f"{model.name:<18} {model.kind:<6} {where:<16} {model.description}")
    raise typer.Exit()


def _separator(sep: str | None) -> str | None:
    """``--sep`` as one character (``\\t`` and ``tab`` name a tab); None: sniff it."""
    if sep is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}
    sep = named.get(sep.lower(), sep)
    if len(sep) != 1:
        raise typer.BadParameter(f"expected one character (e.g. ';' or tab), got {sep!r}")
    return sep


def sniff_separator(file: Path) -> str:
    """The delimiter of a paths CSV, from its header line: the one of
    :data:`SNIFFED_DELIMITERS` that splits it into the most fields (``,`` when none does).

    The header decides because path cells hold ``>`` and spaces, and a file may have a
    single row; ChannelAttribution's headers have no delimiter inside a name.
    """
    with open(file, encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    counts = {d: header.count(d) for d in SNIFFED_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_paths_file(file: Path, sep: str | None = None):
    """Aggregated paths from ``file`` with delimiter ``sep`` (sniffed when None)."""
    import pandas as pd

    from triangulate.mta.paths import (
        AggregatedPathsError,
        aggregated_paths_frame,
        read_aggregated_paths,
    )

    if not file.is_file():
        raise AggregatedPathsError(f"{file}: no such file")
    sep = sep or sniff_separator(file)
    if sep == ",":
        return read_aggregated_paths(file)
    try:
        raw = pd.read_csv(
            file, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True,
            encoding="utf-8-sig",
        )  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise AggregatedPathsError(
            f"{file}: not a readable {sep!r}-separated file ({error})"
        ) from error
    return aggregated_paths_frame(raw, source=str(file))


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
    sep: Annotated[
        str | None,
        typer.Option(
            "--sep",
            help="Field delimiter of --paths (default: sniffed from the header among , ; tab |).",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table: for people (thousands separators); csv or json: only the credits on "
            "stdout, plain numbers, for scripts.",
        ),
    ] = OutputFormat.table,
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
    from triangulate.mta.paths import AggregatedPathsError

    chosen = [m.strip() for m in models.split(",") if m.strip()] or None
    try:
        frame = read_paths_file(paths, _separator(sep))
        credit = attribute_paths(frame, models=chosen, direct_channel=direct_channel)
    except (AggregatedPathsError, ValueError) as error:
        typer.echo(f"triangulate mta: {error}", err=True)
        raise typer.Exit(code=2) from error

    for_people = output_format is OutputFormat.table
    typer.echo(
        f"{paths}: {len(frame)} paths, {frame['conversions'].sum():g} conversions, "
        f"{frame['revenue'].sum():,.2f} revenue, {frame['nulls'].sum():g} non-converting journeys",
        err=not for_people,
    )
    if for_people:
        typer.echo(credit.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    elif output_format is OutputFormat.csv:
        typer.echo(credit.to_csv(index=False), nl=False)
    else:
        typer.echo(credit.to_json(orient="records", double_precision=15))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        credit.to_csv(out, index=False)
        typer.echo(f"wrote {out}", err=not for_people)
