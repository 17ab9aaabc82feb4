"""Aggregated paths in ChannelAttribution's format (contracts.md §3).

A CSV (or DataFrame) with ``path`` ("A > B > C", channels joined by '>', spaces around
names ignored), ``total_conversions``, optional ``total_conversion_value`` and optional
``total_null``. Users migrating from ChannelAttribution feed the same file to both.

Read into the canonical frame ``path, conversions, revenue, nulls`` (counts and money as
floats; a missing value column means revenue 0, a missing null column means no
non-converting journeys, which is ChannelAttribution's behaviour without ``var_null``:
zero-conversion rows then carry no weight). Errors name the file, the row (1-based data
row, the header is line 1) and the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PATH_COLUMN = "path"
CONVERSIONS_COLUMN = "total_conversions"
VALUE_COLUMN = "total_conversion_value"
NULL_COLUMN = "total_null"


class AggregatedPathsError(ValueError):
    """An aggregated-paths input that cannot be used, with where and why."""


def read_aggregated_paths(file: Path | str) -> pd.DataFrame:
    """Read and validate an aggregated-paths CSV; returns ``path, conversions, revenue, nulls``."""
    file = Path(file)
    if not file.is_file():
        raise AggregatedPathsError(f"{file}: no such file")
    try:
        raw = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise AggregatedPathsError(f"{file}: not a readable CSV ({error})") from error
    return aggregated_paths_frame(raw, source=str(file))


def aggregated_paths_frame(raw: pd.DataFrame, source: str = "paths") -> pd.DataFrame:
    """Validate ChannelAttribution-style columns and return the canonical frame.

    ``raw`` may hold strings (as read from CSV) or numbers. ``source`` names the input in
    errors.
    """
    columns = {str(c).strip(): c for c in raw.columns}
    for required in (PATH_COLUMN, CONVERSIONS_COLUMN):
        if required not in columns:
            raise AggregatedPathsError(
                f"{source}: missing column {required!r} (expected {PATH_COLUMN}, {CONVERSIONS_COLUMN}"
                f"[, {VALUE_COLUMN}][, {NULL_COLUMN}]; found {list(columns)})"
            )
    paths = raw[columns[PATH_COLUMN]].astype(str).str.strip()
    for row in np.flatnonzero(paths.isin(["", "nan", "None"]).to_numpy()):
        raise AggregatedPathsError(f"{source}: row {row + 1}, field {PATH_COLUMN}: empty path")
    channels = paths.str.split(">")
    bad = channels.map(lambda names: any(not name.strip() for name in names)).to_numpy()
    for row in np.flatnonzero(bad):
        raise AggregatedPathsError(
            f"{source}: row {row + 1}, field {PATH_COLUMN}: {paths.iloc[row]!r} has an empty channel name"
        )
    normalized = channels.map(lambda names: " > ".join(name.strip() for name in names))

    def numbers(column: str, required: bool) -> np.ndarray:
        if column not in columns:
            return np.zeros(len(raw))
        text = raw[columns[column]]
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        invalid = ~np.isfinite(values) | (values < 0)
        for row in np.flatnonzero(invalid):
            if not required and str(text.iloc[row]).strip() == "":
                continue
            raise AggregatedPathsError(
                f"{source}: row {row + 1}, field {column}: {text.iloc[row]!r} is not a non-negative number"
            )
        return np.where(np.isfinite(values), values, 0.0)

    conversions = numbers(CONVERSIONS_COLUMN, required=True)
    revenue = numbers(VALUE_COLUMN, required=False)
    for row in np.flatnonzero((revenue > 0) & (conversions == 0)):
        raise AggregatedPathsError(
            f"{source}: row {row + 1}, field {VALUE_COLUMN}: value {revenue[row]:g} on a path with no conversions"
        )
    return pd.DataFrame(
        {
            "path": normalized.astype("str").to_numpy(),
            "conversions": conversions,
            "revenue": revenue,
            "nulls": numbers(NULL_COLUMN, required=False),
        }
    )


def path_touches(paths: pd.DataFrame) -> pd.DataFrame:
    """The journey-touch relation (see :mod:`dagster_project.mta.sql`) of aggregated paths.

    One row per channel occurrence; each path row is one "journey" that counts its
    conversions, revenue and nulls. A ``week_start`` column is carried along when present;
    no campaigns or ages.
    """
    split = paths["path"].str.split(" > ")
    lengths = split.map(len).to_numpy()
    row = np.repeat(np.arange(len(paths)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    weeks = paths["week_start"].to_numpy()[row] if "week_start" in paths.columns else None
    return pd.DataFrame(
        {
            "week_start": weeks,
            "person_key": row,
            "journey_seq": np.zeros(len(row), dtype=np.int64),
            "conversions": paths["conversions"].to_numpy(dtype=float)[row],
            "revenue": paths["revenue"].to_numpy(dtype=float)[row],
            "nulls": paths["nulls"].to_numpy(dtype=float)[row],
            "position": np.arange(len(row)) - starts + 1,
            "channel": np.concatenate(split.to_numpy()) if len(row) else np.array([], dtype=object),
        }
    )
