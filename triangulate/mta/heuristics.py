"""Rule-based (heuristic) models on aggregated paths, vectorized with numpy.

The same per-touch weights as the warehouse's SQL
(:func:`triangulate.mta.sql.heuristic_credit_sql`), for a journey of ``n`` touches
(0-based position ``i``):

* first touch: 1 if ``i = 0``; last touch: 1 if ``i = n - 1``;
* last non-direct: 1 on the last touch whose channel is not the direct channel (the last
  touch when every touch is direct);
* linear: ``1/n`` per touch (a channel touched twice earns twice, as ChannelAttribution
  defines it);
* position-based: 40% first, 40% last, 20% shared by the middle touches; 50/50 for two
  touches; 100% for one.

Time decay needs touch times, which aggregated paths do not carry. A touch's credit is
its weight x the path's conversions (and x its revenue); weights sum to 1 per path, so
every model's credits sum to the paths' conversions and revenue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from triangulate.mta.paths import EncodedPaths
from triangulate.mta.sql import POSITION_BASED_WEIGHTS

PATH_HEURISTIC_MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based")
"""Heuristics that need only the order of channels."""


def heuristic_weights(paths: EncodedPaths, model: str, direct_channel: str) -> np.ndarray:
    """float64 [touches]: the model's weight of every touch (sums to 1 per path)."""
    position = paths.touch_position
    length = np.repeat(paths.lengths, paths.lengths)
    is_last = position == length - 1
    if model == "first_touch":
        return (position == 0).astype(float)
    if model == "last_touch":
        return is_last.astype(float)
    if model == "linear":
        return 1.0 / length
    if model == "last_non_direct":
        direct = paths.channels.index(direct_channel) if direct_channel in paths.channels else -1
        candidate = np.where(paths.touch_channel != direct, position, -1)
        last_non_direct = np.maximum.reduceat(candidate, paths.path_start[:-1])
        chosen = np.where(last_non_direct >= 0, last_non_direct, paths.lengths - 1)
        return (position == np.repeat(chosen, paths.lengths)).astype(float)
    if model == "position_based":
        first, middle, last = POSITION_BASED_WEIGHTS
        with np.errstate(divide="ignore"):
            middle_share = middle / (length - 2)
        return np.select(
            [length == 1, length == 2, position == 0, is_last],
            [1.0, 0.5, first, last],
            default=middle_share,
        )
    raise ValueError(f"unknown heuristic {model!r}; choose from {list(PATH_HEURISTIC_MODELS)}")


def heuristic_credit(
    paths: EncodedPaths, models: Sequence[str], direct_channel: str
) -> pd.DataFrame:
    """Credit per model, group and channel: ``model, group, channel, conversions, revenue``.

    One row per model and (group, channel) touched on a path with conversions.
    """
    touch_path = paths.touch_path
    converting = paths.conversions[touch_path] > 0
    n_channels = len(paths.channels)
    cell = (paths.group[touch_path] * n_channels + paths.touch_channel)[converting]
    cells = np.unique(cell)
    size = len(paths.groups) * n_channels
    conversions = paths.conversions[touch_path][converting]
    revenue = paths.revenue[touch_path][converting]
    names = np.array(paths.channels, dtype=object)
    frames = []
    for model in models:
        weight = heuristic_weights(paths, model, direct_channel)[converting]
        frames.append(
            pd.DataFrame(
                {
                    "model": model,
                    "group": cells // max(n_channels, 1),
                    "channel": pd.Series(names[cells % max(n_channels, 1)], dtype="str"),
                    "conversions": np.bincount(cell, weight * conversions, size)[cells],
                    "revenue": np.bincount(cell, weight * revenue, size)[cells],
                }
            )
        )
    columns = ["model", "group", "channel", "conversions", "revenue"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    return pd.concat(frames, ignore_index=True)
