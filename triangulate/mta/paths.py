"""Aggregated paths in ChannelAttribution's format (docs/contracts.md §3).

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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise, repeat
from pathlib import Path

import numpy as np
import pandas as pd

from triangulate.mta.sql import PATH_SEPARATOR

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
    """The journey-touch relation (see :mod:`triangulate.mta.sql`) of aggregated paths.

    One row per channel occurrence; each path row is one "journey" that counts its
    conversions, revenue and nulls. A ``week_start`` column is carried along when present;
    no campaigns or ages.
    """
    split = paths["path"].str.split(PATH_SEPARATOR)
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


@dataclass(frozen=True)
class EncodedPaths:
    """Aggregated paths as integer arrays: every distinct path encoded once.

    Touches of all paths lie back to back (a CSR layout): path ``p`` owns the touches
    ``path_start[p]:path_start[p + 1]``, in path order. Channel ``k`` is
    ``channels[k]`` (names sorted, so codes do not depend on input order). Path-level
    models weigh each path by its counts, so their cost follows the number of distinct
    paths, not of journeys.
    """

    channels: tuple[str, ...]
    """Channel names; a touch's code indexes this tuple."""
    touch_channel: np.ndarray
    """int64 [touches]: channel code of each touch."""
    path_start: np.ndarray
    """int64 [paths + 1]: where each path's touches start (last entry: total touches)."""
    group: np.ndarray
    """int64 [paths]: index into ``groups`` (the path's week)."""
    groups: tuple
    """Group keys (``week_start`` values), or ``(None,)`` when the paths have no week."""
    conversions: np.ndarray
    """float64 [paths]: conversions of the journeys on the path."""
    revenue: np.ndarray
    """float64 [paths]: their revenue (money)."""
    nulls: np.ndarray
    """float64 [paths]: non-converting journeys on the path."""

    @cached_property
    def lengths(self) -> np.ndarray:
        """int64 [paths]: touches per path (always >= 1)."""
        return np.diff(self.path_start)

    @cached_property
    def touch_path(self) -> np.ndarray:
        """int64 [touches]: the path each touch belongs to."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    @cached_property
    def touch_position(self) -> np.ndarray:
        """int64 [touches]: 0-based position of each touch in its path."""
        return np.arange(len(self.touch_channel)) - np.repeat(self.path_start[:-1], self.lengths)


def encode_paths(paths: pd.DataFrame) -> EncodedPaths:
    """Encode the canonical frame (``[week_start,] path, conversions, revenue, nulls``).

    Paths are split and channel names looked up in Arrow's compute kernels (columnar,
    no Python loop per path); codes follow the sorted channel names.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(paths["path"].astype(str).to_numpy(dtype=object), type=pa.string())
    lists = pc.split_pattern(text, PATH_SEPARATOR)
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    tokens = pc.list_flatten(lists)
    channels = sorted(pc.unique(tokens).to_pylist())
    touch_channel = pc.index_in(tokens, value_set=pa.array(channels, type=pa.string()))
    return _encoded(paths, channels, lengths, touch_channel.to_numpy(zero_copy_only=False))


def encode_path_codes(
    codes: pd.DataFrame, channels: Sequence[str], longer: pd.DataFrame | None = None
) -> EncodedPaths:
    """Encode aggregated paths that arrive as path codes (and, for journeys too long for a
    code, as path strings).

    ``codes``: ``[week_start,] path_code, conversions, revenue, nulls`` of
    :func:`triangulate.mta.sql.path_codes_sql` with the same sorted ``channels``
    (``path_code`` holds the path's channel codes + 1 as base ``len(channels) + 1``
    digits, first touch least significant). ``longer``: the canonical frame of the longer
    journeys' paths (their channels must be among ``channels``). Paths keep that order:
    the coded ones, then the longer ones.
    """
    channels = list(channels)
    if channels != sorted(set(channels)):
        raise ValueError("channels must be sorted and distinct")
    base = len(channels) + 1
    rest = codes["path_code"].to_numpy(dtype=np.int64).copy()
    digits = []
    while rest.any():
        rest, digit = np.divmod(rest, base)
        digits.append(digit)
    matrix = np.column_stack(digits) if digits else np.zeros((len(rest), 0), dtype=np.int64)
    present = matrix > 0  # digits are non-zero up to the path's length, zero after
    lengths = present.sum(axis=1).astype(np.int64)
    touch_channel = matrix[present] - 1  # row by row: path by path, first touch first
    if (lengths == 0).any():
        raise ValueError("path_code 0 is no path (a journey without touches?)")
    frame = codes.drop(columns="path_code")
    if longer is not None and len(longer):
        texts = longer["path"].astype(str).tolist()
        tokens = PATH_SEPARATOR.join(texts).split(PATH_SEPARATOR)
        index = {channel: k for k, channel in enumerate(channels)}
        unknown = sorted(set(tokens) - index.keys())
        if unknown:
            raise ValueError(f"paths name channels without a code: {unknown[:5]}")
        lengths = np.concatenate(
            [lengths, np.fromiter(map(str.count, texts, repeat(PATH_SEPARATOR)), np.int64) + 1]
        )
        touch_channel = np.concatenate(
            [touch_channel, np.fromiter(map(index.__getitem__, tokens), np.int64, len(tokens))]
        )
        frame = pd.concat([frame, longer.drop(columns="path")], ignore_index=True)
    return _encoded(frame, channels, lengths, touch_channel)


def decoded_paths(paths: EncodedPaths) -> list[str]:
    """Each encoded path as text, channels joined by ' > ' (the canonical ``path``)."""
    tokens = np.array(paths.channels, dtype=object)[paths.touch_channel].tolist()
    bounds = paths.path_start.tolist()
    return [PATH_SEPARATOR.join(tokens[a:b]) for a, b in pairwise(bounds)]


def _encoded(
    frame: pd.DataFrame, channels: Sequence[str], lengths: np.ndarray, touch_channel: np.ndarray
) -> EncodedPaths:
    """EncodedPaths from the per-path columns of ``frame`` (``[week_start,] conversions,
    revenue, nulls``) and the touches; weeks become group indices (missing weeks form
    one group, as SQL's GROUP BY does)."""
    if "week_start" in frame.columns:
        group, groups = pd.factorize(frame["week_start"], sort=True, use_na_sentinel=False)
        group_keys = tuple(None if pd.isna(g) else g for g in groups)
    else:
        group, group_keys = np.zeros(len(frame), dtype=np.int64), (None,)
    return EncodedPaths(
        channels=tuple(str(c) for c in channels),
        touch_channel=np.asarray(touch_channel, dtype=np.int64),
        path_start=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        group=np.asarray(group, dtype=np.int64),
        groups=group_keys,
        conversions=frame["conversions"].to_numpy(dtype=float),
        revenue=frame["revenue"].to_numpy(dtype=float),
        nulls=frame["nulls"].to_numpy(dtype=float),
    )
