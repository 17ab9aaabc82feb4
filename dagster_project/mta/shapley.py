"""Shapley-value attribution, exact, in the simplified form of Zhao, Mahboobi & Bagheri (2018).

Game: players are channels; the value of a coalition ``S`` is the conversions (or
revenue) of journeys whose set of distinct channels is a subset of ``S``. With
``R(T)`` the conversions of journeys whose channel set is exactly ``T``, the Shapley value
of channel ``j`` simplifies to

    phi(j) = sum over channel sets T containing j of R(T) / |T|

i.e. every converting journey splits its conversions equally among its distinct channels.
This is exact (it equals the permutation definition; the tests check it by brute force)
and costs one pass over the distinct channel sets instead of 2^channels coalitions.

Ordered Shapley (the paper's extension) keeps where in the journey each channel first
appeared: ``phi(j, k)`` is the credit channel ``j`` earns as the ``k``-th distinct channel
of a journey, ``sum_k phi(j, k) = phi(j)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dagster_project.mta.sql import PATH_SEPARATOR


def ordered_shapley_credit(channel_sequences: pd.DataFrame) -> pd.DataFrame:
    """Credit per channel and touch order from ``channel_sequence, conversions, revenue``.

    ``channel_sequence`` lists a journey's distinct channels in first-touch order
    ('C > A > B'). Extra columns (e.g. ``week_start``) are carried through as keys.
    Returns the keys plus ``channel, touch_order`` (1 = the journey's first channel),
    ``conversions, revenue``.
    """
    keys = [
        c
        for c in channel_sequences.columns
        if c not in ("channel_sequence", "conversions", "revenue")
    ]
    split = channel_sequences["channel_sequence"].str.split(PATH_SEPARATOR)
    sizes = split.map(len).to_numpy()
    row = np.repeat(np.arange(len(channel_sequences)), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    exploded = channel_sequences[keys].iloc[row].reset_index(drop=True)
    exploded["channel"] = pd.Series(
        np.concatenate(split.to_numpy()) if len(row) else np.array([], dtype=object), dtype="str"
    )
    exploded["touch_order"] = np.arange(len(row)) - starts + 1
    exploded["conversions"] = (
        channel_sequences["conversions"].to_numpy(dtype=float)[row] / sizes[row]
    )
    exploded["revenue"] = channel_sequences["revenue"].to_numpy(dtype=float)[row] / sizes[row]
    return (
        exploded.groupby([*keys, "channel", "touch_order"], dropna=False, sort=True)[
            ["conversions", "revenue"]
        ]
        .sum()
        .reset_index()
    )


def shapley_credit(channel_sequences: pd.DataFrame) -> pd.DataFrame:
    """Exact Shapley credit per channel (plus any key columns) from channel sequences.

    Same input as :func:`ordered_shapley_credit` (order is ignored); returns the keys plus
    ``channel, conversions, revenue``.
    """
    ordered = ordered_shapley_credit(channel_sequences)
    keys = [c for c in ordered.columns if c not in ("touch_order", "conversions", "revenue")]
    return (
        ordered.groupby(keys, dropna=False, sort=True)[["conversions", "revenue"]]
        .sum()
        .reset_index()
    )
