"""Markov-chain attribution with exact removal effects (absorbing-chain linear solve).

The chain: transient states are ``start`` and the channel states of
:func:`dagster_project.mta.sql.markov_transitions_sql`; absorbing states are
``conversion`` and ``null``. From transition counts ``n(i -> j)`` the probabilities are
``P(i -> j) = n(i -> j) / sum_j n(i -> j)``, where the ending rows of a path count toward
``conversion`` (its conversions) and ``null`` (its non-converting journeys).

Exact conversion probability. With ``Q`` the transient-to-transient block and ``r`` the
one-step probabilities into ``conversion``, the probabilities ``x`` of ever converting
solve ``(I - Q) x = r``; ``P(conversion) = x[start]``. ChannelAttribution estimates the
same numbers by simulating paths; here they are solved, so there is no sampling error
and no step cap.

Removal effect of channel ``c``: remove every state that contains ``c`` (paths reaching
it end in ``null``) and solve again on the remaining states:
``RE(c) = 1 - P(conversion without c) / P(conversion)``.

Revenue works the same way with money instead of counts, as ChannelAttribution does
(its ``removal_effects_conversion_value``): the ending rows absorb their revenue, ``r_v``
is revenue per journey leaving each state, ``(I - Q) y = r_v`` gives the expected revenue
per journey ``y[start]``, and ``RE_value(c) = 1 - y_without_c[start] / y[start]``.

Credits (ChannelAttribution's convention): ``conversions(c) = total conversions x RE(c) /
sum RE`` and ``revenue(c) = total revenue x RE_value(c) / sum RE_value``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from dagster_project.mta.sql import PATH_SEPARATOR


@dataclass(frozen=True)
class RemovalEffects:
    """Exact Markov results for one set of transitions."""

    conversion_probability: float
    """P(conversion) from the start state, 0..1 (for ``absorbing="revenue"``: expected
    revenue per journey, in the revenue's money unit)."""
    removal_effects: dict[str, float]
    """Channel -> removal effect, 0..1."""


def removal_effects(transitions: pd.DataFrame, absorbing: str = "conversions") -> RemovalEffects:
    """Exact removal effects from transition counts.

    ``transitions`` has the columns of ``markov_transitions_sql``: ``from_state``
    (None = start), ``to_state`` (None = the path ends), ``transitions``, ``conversions``,
    ``revenue``, ``nulls`` (only ratios matter). ``absorbing`` picks what the ending rows
    deliver: ``"conversions"`` (conversion probability) or ``"revenue"`` (expected revenue).
    """
    from_states = transitions["from_state"].to_numpy(dtype=object)
    to_states = transitions["to_state"].to_numpy(dtype=object)
    counts = transitions["transitions"].to_numpy(dtype=float)
    absorbed = transitions[absorbing].to_numpy(dtype=float)

    states = sorted(
        {s for s in from_states if isinstance(s, str)}
        | {s for s in to_states if isinstance(s, str)}
    )
    index = {state: i + 1 for i, state in enumerate(states)}  # 0 is the start
    n = len(states) + 1
    rows = np.fromiter(
        (index.get(s, 0) if isinstance(s, str) else 0 for s in from_states), int, len(from_states)
    )
    ends = np.array([not isinstance(s, str) for s in to_states], dtype=bool)
    cols = np.fromiter(
        (index[s] if isinstance(s, str) else 0 for s in to_states), int, len(to_states)
    )

    out_total = np.bincount(rows, weights=counts, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse_total = np.where(out_total > 0, 1.0 / out_total, 0.0)
    moves = ~ends
    q = sp.csr_matrix(
        (counts[moves] * inverse_total[rows[moves]], (rows[moves], cols[moves])), shape=(n, n)
    )
    r = np.bincount(rows[ends], weights=absorbed[ends], minlength=n) * inverse_total

    channels_of_state = [set()] + [set(state.split(PATH_SEPARATOR)) for state in states]
    channels = sorted(set().union(*channels_of_state))
    full = _conversion_probability(q, r, np.ones(n, dtype=bool))
    effects: dict[str, float] = {}
    for channel in channels:
        keep = np.array([channel not in members for members in channels_of_state])
        without = _conversion_probability(q, r, keep)
        effects[channel] = 0.0 if full <= 0 else max(0.0, 1.0 - without / full)
    return RemovalEffects(conversion_probability=full, removal_effects=effects)


def _conversion_probability(q: sp.csr_matrix, r: np.ndarray, keep: np.ndarray) -> float:
    """x[start] of ``(I - Q) x = r`` restricted to the kept states (start is index 0)."""
    kept = np.flatnonzero(keep)
    if not r[kept].any():
        return 0.0
    q_kept = q[kept][:, kept]
    system = (sp.identity(len(kept), format="csc") - q_kept).tocsc()
    x = spsolve(system, r[kept])
    return float(np.atleast_1d(x)[0])


def markov_credit(transitions: pd.DataFrame, conversions: float, revenue: float) -> pd.DataFrame:
    """Channel credits: removal effects normalized to total conversions and revenue.

    Returns columns ``channel, conversions, revenue, removal_effect,
    revenue_removal_effect``; every channel of the transitions appears (zero when its
    removal changes nothing).
    """
    by_conversions = removal_effects(transitions, "conversions").removal_effects
    by_revenue = removal_effects(transitions, "revenue").removal_effects
    channels = list(by_conversions)
    effects = np.array([by_conversions[c] for c in channels], dtype=float)
    revenue_effects = np.array([by_revenue[c] for c in channels], dtype=float)
    return pd.DataFrame(
        {
            "channel": pd.Series(channels, dtype="str"),
            "conversions": _normalized(effects) * conversions,
            "revenue": _normalized(revenue_effects) * revenue,
            "removal_effect": effects,
            "revenue_removal_effect": revenue_effects,
        }
    )


def _normalized(effects: np.ndarray) -> np.ndarray:
    """Shares summing to 1 (all zero when nothing converts)."""
    total = effects.sum()
    return effects / total if total > 0 else np.zeros_like(effects)
