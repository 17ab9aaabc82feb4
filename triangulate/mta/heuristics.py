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

Time decay (``2^(-age_days / half_life_days)``, normalized per journey) needs touch
times, which aggregated paths do not carry: it runs in the warehouse only. A touch's
credit is its weight x the path's conversions (and x its revenue); weights sum to 1 per
path, so every model's credits sum to the paths' conversions and revenue.

Each model registers itself (:mod:`triangulate.mta.registry`, kind ``touch``) with its
numpy weights and its SQL weight; :func:`heuristic_credit` runs any touch model on
encoded paths.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from triangulate.mta import registry
from triangulate.mta.paths import EncodedPaths
from triangulate.mta.registry import ModelOptions, touch_model

POSITION_BASED_WEIGHTS = (0.4, 0.2, 0.4)
"""Position-based credit: first touch, all middle touches together, last touch."""


def _length(paths: EncodedPaths) -> np.ndarray:
    return np.repeat(paths.lengths, paths.lengths)


@touch_model(
    "first_touch",
    description="all credit to the first touch",
    sql_weight="case when position = 1 then 1.0 else 0.0 end",
    order=10,
)
def first_touch(paths: EncodedPaths, options: ModelOptions) -> np.ndarray:
    return (paths.touch_position == 0).astype(float)


@touch_model(
    "last_touch",
    description="all credit to the last touch",
    sql_weight="case when position = path_length then 1.0 else 0.0 end",
    order=20,
)
def last_touch(paths: EncodedPaths, options: ModelOptions) -> np.ndarray:
    return (paths.touch_position == _length(paths) - 1).astype(float)


@touch_model(
    "last_non_direct",
    description="all credit to the last touch not on the direct channel "
    "(the last touch when the journey is all direct)",
    sql_weight="case when position = coalesce(last_non_direct_position, path_length) "
    "then 1.0 else 0.0 end",
    order=30,
)
def last_non_direct(paths: EncodedPaths, options: ModelOptions) -> np.ndarray:
    position = paths.touch_position
    direct_channel = options.direct_channel
    direct = paths.channels.index(direct_channel) if direct_channel in paths.channels else -1
    candidate = np.where(paths.touch_channel != direct, position, -1)
    chosen = np.maximum.reduceat(candidate, paths.path_start[:-1])
    chosen = np.where(chosen >= 0, chosen, paths.lengths - 1)
    return (position == np.repeat(chosen, paths.lengths)).astype(float)


@touch_model(
    "linear",
    description="1/n per touch (a channel touched twice earns twice)",
    sql_weight="1.0 / path_length",
    order=40,
)
def linear(paths: EncodedPaths, options: ModelOptions) -> np.ndarray:
    return 1.0 / _length(paths)


_FIRST, _MIDDLE, _LAST = POSITION_BASED_WEIGHTS


@touch_model(
    "position_based",
    description="40% first, 40% last, 20% shared by the middle; 50/50 for two touches",
    sql_weight=(
        "case when path_length = 1 then 1.0 when path_length = 2 then 0.5 "
        f"when position = 1 then {_FIRST} when position = path_length then {_LAST} "
        f"else {_MIDDLE} / (path_length - 2) end"
    ),
    order=50,
)
def position_based(paths: EncodedPaths, options: ModelOptions) -> np.ndarray:
    position, length = paths.touch_position, _length(paths)
    with np.errstate(divide="ignore"):
        middle_share = _MIDDLE / (length - 2)
    return np.select(
        [length == 1, length == 2, position == 0, position == length - 1],
        [1.0, 0.5, _FIRST, _LAST],
        default=middle_share,
    )


registry.register(
    registry.AttributionModel(
        name="time_decay",
        kind=registry.TOUCH,
        description="weight 2^(-days before conversion / half_life), normalized per journey",
        sql_weight="decay / decay_total",
        needs="touch times (age before conversion)",
        order=60,
        module=__name__,
    )
)


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "PATH_HEURISTIC_MODELS":  # the touch models that run on aggregated paths
        return registry.names(registry.PATHS, kind=registry.TOUCH)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def heuristic_weights(paths: EncodedPaths, model: str, direct_channel: str) -> np.ndarray:
    """float64 [touches]: the touch model's weight of every touch (sums to 1 per path)."""
    found = registry.get(model)
    if found.path_weights is None:
        touch_models = list(registry.names(registry.PATHS, kind=registry.TOUCH))
        raise ValueError(
            f"{model!r} has no weights on aggregated paths; choose from {touch_models}"
        )
    return np.asarray(found.path_weights(paths, ModelOptions(direct_channel=direct_channel)))


def heuristic_credit(
    paths: EncodedPaths, models: Sequence[str], direct_channel: str
) -> pd.DataFrame:
    """Credit per model, group and channel: ``model, group, channel, conversions, revenue``.

    One row per model and (group, channel) touched on a path with conversions. ``models``:
    touch models with weights on aggregated paths.
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
