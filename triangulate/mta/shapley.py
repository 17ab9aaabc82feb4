"""Shapley-value attribution, exact, in the simplified form of Zhao, Mahboobi & Bagheri (2018).

Game: players are channels; the value of a coalition ``S`` is the conversions (or
revenue) of journeys whose set of distinct channels is a subset of ``S``. With
``R(T)`` the conversions of journeys whose channel set is exactly ``T``, the Shapley value
of channel ``j`` simplifies to

    phi(j) = sum over channel sets T containing j of R(T) / |T|

i.e. every converting journey splits its conversions equally among its distinct channels.
This is exact (it equals the permutation definition; the tests check it by brute force)
and costs one pass over the distinct paths instead of 2^channels coalitions.

Ordered Shapley (the paper's extension) keeps where in the journey each channel first
appeared: ``phi(j, k)`` is the credit channel ``j`` earns as the ``k``-th distinct channel
of a journey, ``sum_k phi(j, k) = phi(j)``.

Both run on :class:`~triangulate.mta.paths.EncodedPaths` with numpy: a path's
distinct channels are its touches that are the first of their channel in the path.
Registered models (:mod:`triangulate.mta.registry`, kind ``path``): ``shapley`` and
``ordered_shapley`` (its own output frame, warehouse only); fitted on the same paths they
share one :func:`ordered_shapley_credit`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from triangulate.mta.paths import EncodedPaths
from triangulate.mta.registry import ModelContext, path_model


def ordered_shapley_credit(paths: EncodedPaths) -> pd.DataFrame:
    """Credit per group, channel and touch order over the converting paths.

    Returns ``group`` (index into ``paths.groups``), ``channel``, ``touch_order`` (1 = the
    journey's first distinct channel), ``conversions``, ``revenue``; one row per
    combination that occurs, sorted by group, channel name and touch order.
    """
    n_channels = len(paths.channels)
    converting = np.flatnonzero((paths.conversions > 0)[paths.touch_path])
    touch_path = paths.touch_path[converting]
    channel = paths.touch_channel[converting]
    # first touch of each (path, channel): np.unique returns first occurrences, which are
    # the earliest positions because touches are stored in path order
    _, first = np.unique(touch_path * max(n_channels, 1) + channel, return_index=True)
    first.sort()
    path, channel = touch_path[first], channel[first]
    index = np.arange(len(first))
    starts = np.ones(len(first), dtype=bool)
    starts[1:] = path[1:] != path[:-1]
    touch_order = index - np.maximum.accumulate(np.where(starts, index, 0)) + 1
    distinct = np.bincount(path, minlength=len(paths.conversions))[path]
    credit = pd.DataFrame(
        {
            "group": paths.group[path],
            "channel_code": channel,
            "touch_order": touch_order,
            "conversions": paths.conversions[path] / distinct,
            "revenue": paths.revenue[path] / distinct,
        }
    )
    summed = (
        credit.groupby(["group", "channel_code", "touch_order"], sort=True)[
            ["conversions", "revenue"]
        ]
        .sum()
        .reset_index()
    )
    names = np.array(paths.channels, dtype=object)
    summed.insert(
        1, "channel", pd.Series(names[summed.pop("channel_code").to_numpy()], dtype="str")
    )
    return summed


def shapley_credit(paths: EncodedPaths) -> pd.DataFrame:
    """Exact Shapley credit per group and channel: ``group, channel, conversions, revenue``."""
    return sum_over_touch_order(ordered_shapley_credit(paths))


def sum_over_touch_order(ordered: pd.DataFrame) -> pd.DataFrame:
    """Ordered Shapley credit summed over touch orders: the plain Shapley value."""
    return (
        ordered.groupby(["group", "channel"], sort=True)[["conversions", "revenue"]]
        .sum()
        .reset_index()
    )


def _ordered(paths: EncodedPaths, context: ModelContext) -> pd.DataFrame:
    return context.memo("shapley.ordered", lambda: ordered_shapley_credit(paths))


@path_model("shapley", description="exact Shapley value over distinct channel sets", order=200)
def shapley(paths: EncodedPaths, context: ModelContext) -> pd.DataFrame:
    return sum_over_touch_order(_ordered(paths, context))


@path_model(
    "ordered_shapley",
    description="Shapley credit by the order in which channels first appear "
    "(its own output; channel totals equal shapley)",
    order=210,
    output="ordered_shapley",
)
def ordered_shapley(paths: EncodedPaths, context: ModelContext) -> pd.DataFrame:
    return _ordered(paths, context)
