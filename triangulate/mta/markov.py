"""Markov-chain attribution with exact removal effects (absorbing-chain linear solve).

The chain: transient states are ``start`` and the channel states (order ``k``: the last
``k`` channels of the path after consecutive repeats collapse, shorter at the start of
a path); absorbing states are ``conversion`` and ``null``. From transition counts
``n(i -> j)`` the probabilities are ``P(i -> j) = n(i -> j) / sum_j n(i -> j)``, where a
path ending in state ``i`` counts toward ``conversion`` (its conversions) and ``null``
(its non-converting journeys).

Exact conversion probability. With ``Q`` the transient-to-transient block and ``r`` the
one-step probabilities into ``conversion``, the probabilities ``x`` of ever converting
solve ``(I - Q) x = r``; ``P(conversion) = x[start]``. ChannelAttribution estimates the
same numbers by simulating paths; here they are solved (sparse LU), so there is no
sampling error and no step cap.

Removal effect of channel ``c``: remove every state that contains ``c`` (paths reaching
it end in ``null``) and solve again on the remaining states:
``RE(c) = 1 - P(conversion without c) / P(conversion)``.

Revenue works the same way with money instead of counts, as ChannelAttribution does
(its ``removal_effects_conversion_value``): the ending rows absorb their revenue, ``r_v``
is revenue per journey leaving each state, ``(I - Q) y = r_v`` gives the expected revenue
per journey ``y[start]``, and ``RE_value(c) = 1 - y_without_c[start] / y[start]``. Both
right-hand sides share one factorization of ``I - Q``.

Credits (ChannelAttribution's convention): ``conversions(c) = total conversions x RE(c) /
sum RE`` and ``revenue(c) = total revenue x RE_value(c) / sum RE_value``.

Two entry points share the solver: :func:`markov_credit` builds the transitions of every
week straight from :class:`~triangulate.mta.paths.EncodedPaths` with numpy (states
are integers, the path-level work follows the number of distinct paths);
:func:`removal_effects` takes transition counts as a DataFrame with state names (e.g.
from :func:`triangulate.mta.sql.markov_transitions_sql`).

Registered models (:mod:`triangulate.mta.registry`, kind ``path``): ``markov_1`` to
``markov_3`` (:data:`MARKOV_ORDERS`); the orders fitted on the same paths share one
:func:`collapsed_steps`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from triangulate.mta import registry
from triangulate.mta.paths import EncodedPaths
from triangulate.mta.sql import PATH_SEPARATOR

START = 0
"""Index of the start state in every chain."""
END = -1
"""``to_state`` of a row where the path ends (absorbed into conversion or null)."""


@dataclass(frozen=True)
class RemovalEffects:
    """Exact Markov results for one set of transitions."""

    conversion_probability: float
    """P(conversion) from the start state, 0..1 (for ``absorbing="revenue"``: expected
    revenue per journey, in the revenue's money unit)."""
    removal_effects: dict[str, float]
    """Channel -> removal effect, 0..1."""


@dataclass(frozen=True)
class MarkovTransitions:
    """Transition counts per group, states as integers, one row per (group, from, to).

    A path ``s1 > s2 > s3`` (states after collapsing repeats) with weight ``w =
    conversions + nulls`` adds ``w`` to the rows ``start -> s1``, ``s1 -> s2``,
    ``s2 -> s3`` and to the ending row ``s3 -> END``, which also sums the path's
    conversions, revenue and nulls.
    """

    order: int
    channels: tuple[str, ...]
    """Channel names; bit ``k`` of a state's membership is ``channels[k]``."""
    state_names: tuple[str | None, ...]
    """State index -> 'A > B' (index 0, the start, is None)."""
    state_channels: np.ndarray
    """bool [states, channels]: which channels a state contains (removal drops them)."""
    group: np.ndarray
    from_state: np.ndarray
    to_state: np.ndarray
    """int64 [rows]; ``END`` (-1) on ending rows."""
    transitions: np.ndarray
    conversions: np.ndarray
    revenue: np.ndarray
    nulls: np.ndarray

    def frame(self, groups: tuple) -> pd.DataFrame:
        """Summed like ``markov_transitions_sql``: ``week_start, from_state, to_state,
        transitions, conversions, revenue, nulls`` with state names (None = start / end)."""
        names = np.array([*self.state_names, None], dtype=object)  # index -1 -> None
        rows = pd.DataFrame(
            {
                "week_start": np.array(groups, dtype=object)[self.group],
                "from_state": names[self.from_state],
                "to_state": names[self.to_state],
                "transitions": self.transitions,
                "conversions": self.conversions,
                "revenue": self.revenue,
                "nulls": self.nulls,
            }
        )
        keys = ["week_start", "from_state", "to_state"]
        return rows.groupby(keys, dropna=False, sort=True).sum().reset_index()


@dataclass(frozen=True)
class CollapsedSteps:
    """The touches of every weighted path (conversions + nulls > 0) after consecutive
    repeats collapse (``B > B > C`` is ``B > C``): the steps every Markov order shares."""

    path: np.ndarray
    """int64 [steps]: the path of each step."""
    channel: np.ndarray
    """int64 [steps]: its channel code."""
    position: np.ndarray
    """int64 [steps]: 0-based position in the collapsed path."""
    last: np.ndarray
    """bool [steps]: the path ends after this step."""


def collapsed_steps(paths: EncodedPaths) -> CollapsedSteps:
    """Collapse repeats and drop paths that weigh nothing, once for all orders."""
    weight = paths.conversions + paths.nulls
    touch_path, channel = paths.touch_path, paths.touch_channel
    repeat = np.zeros(len(channel), dtype=bool)
    repeat[1:] = (channel[1:] == channel[:-1]) & (touch_path[1:] == touch_path[:-1])
    keep = ~repeat & (weight > 0)[touch_path]
    path, channel = touch_path[keep], channel[keep]
    steps = np.arange(len(path))
    first = np.ones(len(path), dtype=bool)
    first[1:] = path[1:] != path[:-1]
    last = np.ones(len(path), dtype=bool)
    last[:-1] = first[1:]
    position = steps - np.maximum.accumulate(np.where(first, steps, 0))
    return CollapsedSteps(path=path, channel=channel, position=position, last=last)


def markov_transitions(
    paths: EncodedPaths, order: int, steps: CollapsedSteps | None = None
) -> MarkovTransitions:
    """Transition counts of order ``order`` (1 to 3) for every path with weight > 0.

    A state is the integer ``sum_j (code_{i-j} + 1) * (C + 1)^j`` over the last ``order``
    collapsed channels (0 where the path is shorter), renumbered densely from 1; rows
    are summed by counting over packed ``(group, from, to)`` keys. ``steps``: the
    paths' :func:`collapsed_steps` when already at hand.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"Markov order must be 1, 2 or 3, got {order!r}")
    n_channels = len(paths.channels)
    base = n_channels + 1
    if base**order >= 2**62:
        raise ValueError(f"{n_channels} channels are too many for Markov order {order}")
    steps = collapsed_steps(paths) if steps is None else steps
    code = steps.channel + 1
    for lag in range(1, order):
        lagged = np.zeros(len(code), dtype=np.int64)
        lagged[lag:] = steps.channel[: len(code) - lag] + 1
        code = code + np.where(steps.position >= lag, lagged, 0) * base**lag
    codes, state = _dense_labels(code, base**order)
    state = state + 1  # 0 is the start
    from_state = np.empty_like(state)
    from_state[1:] = state[:-1]
    from_state[steps.position == 0] = START
    n_states = len(codes) + 1

    digits = (codes[:, None] // base ** np.arange(order)) % base  # [states, order], 0 = none
    state_channels = np.zeros((n_states, n_channels), dtype=bool)
    members, lags = np.nonzero(digits)
    state_channels[members + 1, digits[members, lags] - 1] = True
    state_names = (
        None,
        *(
            PATH_SEPARATOR.join(paths.channels[d - 1] for d in reversed(row) if d)
            for row in digits.tolist()
        ),
    )

    n_groups = len(paths.groups)
    group = paths.group[steps.path] if n_groups > 1 else np.zeros(len(state), dtype=np.int64)
    weight = (paths.conversions + paths.nulls)[steps.path]
    moves, move_index = _distinct_rows([group, from_state, state], (n_groups, n_states, n_states))
    ended = steps.path[steps.last]
    ends, end_index = _distinct_rows([group[steps.last], state[steps.last]], (n_groups, n_states))
    n_moves, n_ends = len(moves), len(ends)
    zeros = np.zeros(n_moves)
    return MarkovTransitions(
        order=order,
        channels=paths.channels,
        state_names=state_names,
        state_channels=state_channels,
        group=np.concatenate([moves[:, 0], ends[:, 0]]),
        from_state=np.concatenate([moves[:, 1], ends[:, 1]]),
        to_state=np.concatenate([moves[:, 2], np.full(n_ends, END)]),
        transitions=np.concatenate(
            [
                np.bincount(move_index, weight, n_moves),
                np.bincount(end_index, weight[steps.last], n_ends),
            ]
        ),
        conversions=np.concatenate(
            [zeros, np.bincount(end_index, paths.conversions[ended], n_ends)]
        ),
        revenue=np.concatenate([zeros, np.bincount(end_index, paths.revenue[ended], n_ends)]),
        nulls=np.concatenate([zeros, np.bincount(end_index, paths.nulls[ended], n_ends)]),
    )


def markov_credit(
    paths: EncodedPaths, order: int, steps: CollapsedSteps | None = None
) -> pd.DataFrame:
    """Channel credit of the order-``order`` chain, fitted separately for every group.

    Returns ``group`` (index into ``paths.groups``), ``channel``, ``conversions``,
    ``revenue``, ``removal_effect``, ``revenue_removal_effect``: one row per group with
    conversions and channel on a weighted path of that group (zero credit when removing
    the channel changes nothing). Credits sum to the group's conversions and revenue.
    ``steps``: the paths' :func:`collapsed_steps`, to share between orders.
    """
    chain = markov_transitions(paths, order, steps)
    total_conversions = np.bincount(
        paths.group, weights=paths.conversions, minlength=len(paths.groups)
    )
    total_revenue = np.bincount(paths.group, weights=paths.revenue, minlength=len(paths.groups))
    if len(paths.groups) == 1:
        order_by_group, bounds = np.arange(len(chain.group)), np.array([0, len(chain.group)])
    else:
        order_by_group = np.argsort(chain.group, kind="stable")
        bounds = np.searchsorted(chain.group[order_by_group], np.arange(len(paths.groups) + 1))
    frames = []
    for group in range(len(paths.groups)):
        rows = order_by_group[bounds[group] : bounds[group + 1]]
        if not len(rows) or total_conversions[group] <= 0:
            continue  # only non-converting journeys: nothing to credit
        moves = chain.to_state[rows] != END
        states, local = _dense_labels(
            np.concatenate([chain.from_state[rows], chain.to_state[rows][moves]]),
            len(chain.state_names),
        )
        local_from = local[: len(rows)]
        local_to = np.full(len(rows), END)
        local_to[moves] = local[len(rows) :]
        absorbed = np.column_stack([chain.conversions[rows], chain.revenue[rows]])
        q, r = _chain_matrices(local_from, local_to, chain.transitions[rows], absorbed, len(states))
        membership = chain.state_channels[states]
        present = np.flatnonzero(membership.any(axis=0))
        _, effects = _removal_effects(q, r, membership[:, present])
        frames.append(
            pd.DataFrame(
                {
                    "group": group,
                    "channel": [chain.channels[c] for c in present],
                    "conversions": _normalized(effects[:, 0]) * total_conversions[group],
                    "revenue": _normalized(effects[:, 1]) * total_revenue[group],
                    "removal_effect": effects[:, 0],
                    "revenue_removal_effect": effects[:, 1],
                }
            )
        )
    columns = ["group", "channel", "conversions", "revenue"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    return pd.concat(frames, ignore_index=True)


def removal_effects(transitions: pd.DataFrame, absorbing: str = "conversions") -> RemovalEffects:
    """Exact removal effects from transition counts with state names.

    ``transitions`` has the columns of ``markov_transitions_sql``: ``from_state``
    (None = start), ``to_state`` (None = the path ends), ``transitions``, ``conversions``,
    ``revenue``, ``nulls`` (only ratios matter). ``absorbing`` picks what the ending rows
    deliver: ``"conversions"`` (conversion probability) or ``"revenue"`` (expected revenue).
    """
    from_states = transitions["from_state"].to_numpy(dtype=object)
    to_states = transitions["to_state"].to_numpy(dtype=object)
    states = sorted(
        {s for s in from_states if isinstance(s, str)}
        | {s for s in to_states if isinstance(s, str)}
    )
    index = {state: i + 1 for i, state in enumerate(states)}  # 0 is the start
    rows = np.fromiter(
        (index[s] if isinstance(s, str) else START for s in from_states), np.int64, len(from_states)
    )
    cols = np.fromiter(
        (index[s] if isinstance(s, str) else END for s in to_states), np.int64, len(to_states)
    )
    q, r = _chain_matrices(
        rows,
        cols,
        transitions["transitions"].to_numpy(dtype=float),
        transitions[[absorbing]].to_numpy(dtype=float),
        len(states) + 1,
    )
    channels_of_state = [set()] + [set(state.split(PATH_SEPARATOR)) for state in states]
    channels = sorted(set().union(*channels_of_state))
    membership = np.array(
        [[channel in members for channel in channels] for members in channels_of_state],
        dtype=bool,
    ).reshape(len(channels_of_state), len(channels))
    full, effects = _removal_effects(q, r, membership)
    return RemovalEffects(
        conversion_probability=float(full[0]),
        removal_effects={c: float(e) for c, e in zip(channels, effects[:, 0], strict=True)},
    )


def _distinct_rows(
    columns: list[np.ndarray], space: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of non-negative integer columns (column ``j`` below ``space[j]``),
    sorted, as a matrix, and each row's index among them. Rows are packed into one
    integer key when the key space allows (then counting beats sorting), else
    ``np.unique(axis=0)``."""
    if math.prod(space) < 2**62:
        key = np.zeros(len(columns[0]), dtype=np.int64)
        for column, size in zip(columns, space, strict=True):
            key = key * size + column
        keys, index = _dense_labels(key, math.prod(space))
        distinct = np.zeros((len(keys), len(space)), dtype=np.int64)
        for j in range(len(space) - 1, -1, -1):
            keys, distinct[:, j] = np.divmod(keys, space[j])
        return distinct, index
    distinct, index = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
    return distinct, index.reshape(-1).astype(np.int64)


def _dense_labels(values: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct values, index of each value among them)`` for non-negative
    integers: ``np.unique(values, return_inverse=True)``, by counting instead of sorting
    when the values lie in a small range ``[0, space)``."""
    if space > 1 << 22:
        distinct, index = np.unique(values, return_inverse=True)
        return distinct, index.reshape(-1).astype(np.int64)
    used = np.zeros(space, dtype=bool)
    used[values] = True
    return np.flatnonzero(used), (np.cumsum(used) - 1)[values]


def _chain_matrices(
    from_state: np.ndarray,
    to_state: np.ndarray,
    transitions: np.ndarray,
    absorbed: np.ndarray,
    n_states: int,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``Q`` (transient -> transient probabilities, duplicates summed) and ``R`` [states,
    k]: what each state absorbs per journey leaving it, one column per absorbed quantity.

    A state's outflow is every row leaving it, ending rows included.
    """
    out_total = np.bincount(from_state, weights=transitions, minlength=n_states)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse_total = np.where(out_total > 0, 1.0 / out_total, 0.0)
    moves = to_state != END
    q = sp.csr_matrix(
        (
            transitions[moves] * inverse_total[from_state[moves]],
            (from_state[moves], to_state[moves]),
        ),
        shape=(n_states, n_states),
    )
    ends = ~moves
    r = (
        np.column_stack(
            [
                np.bincount(from_state[ends], weights=absorbed[ends, k], minlength=n_states)
                for k in range(absorbed.shape[1])
            ]
        )
        * inverse_total[:, None]
    )
    return q, r


def _removal_effects(
    q: sp.csr_matrix, r: np.ndarray, membership: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``x[start]`` per column of ``r`` for the full chain, and the removal effect of every
    channel (``membership[:, c]``: the states containing channel ``c``) per column.

    Returns ``(full [k], effects [channels, k])``; an effect is ``max(0, 1 - without /
    full)``, 0 when the full chain absorbs nothing.
    """
    chain = q.toarray() if q.shape[0] <= DENSE_STATES else q
    full = _start_value(chain, r, np.ones(q.shape[0], dtype=bool))
    effects = np.zeros((membership.shape[1], r.shape[1]))
    for c in range(membership.shape[1]):
        without = _start_value(chain, r, ~membership[:, c])
        with np.errstate(divide="ignore", invalid="ignore"):
            effects[c] = np.where(full > 0, np.maximum(0.0, 1.0 - without / full), 0.0)
    return full, effects


DENSE_STATES = 128
"""Chains of at most this many states are solved dense (LAPACK), larger ones sparse
(SuperLU). Both are exact LU solves; for small chains scipy's sparse bookkeeping costs
more than the factorization (measured per solve: 12 states 0.21 ms sparse vs 0.02 ms
dense, 100 states 0.53 vs 0.11, 200 states 1.1 vs 2.3). Orders 1 and 2 are mostly small,
order 3 mostly large."""


def _start_value(q: sp.csr_matrix | np.ndarray, r: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``x[start]`` of ``(I - Q) x = r`` restricted to the kept states (start is index 0),
    one value per column of ``r``; one LU factorization for all columns (dense when ``q``
    is a dense array, see :data:`DENSE_STATES`)."""
    kept = np.flatnonzero(keep)
    r_kept = r[kept]
    if not r_kept.any():
        return np.zeros(r.shape[1])
    if isinstance(q, np.ndarray):
        system = np.eye(len(kept)) - q[np.ix_(kept, kept)]
        return np.linalg.solve(system, r_kept)[0]
    system = (sp.identity(len(kept), format="csc") - q[kept][:, kept]).tocsc()
    x = splu(system).solve(np.ascontiguousarray(r_kept))
    return np.asarray(x).reshape(len(kept), r.shape[1])[0]


def _normalized(effects: np.ndarray) -> np.ndarray:
    """Shares summing to 1 (all zero when nothing converts)."""
    total = effects.sum()
    return effects / total if total > 0 else np.zeros_like(effects)


MARKOV_ORDERS = (1, 2, 3)
"""Chain orders registered as models ``markov_<order>``."""


def _markov_model(order: int):
    def credit(paths: EncodedPaths, context: registry.ModelContext) -> pd.DataFrame:
        steps = context.memo("markov.collapsed_steps", lambda: collapsed_steps(paths))
        return markov_credit(paths, order, steps)

    return credit


for _order in MARKOV_ORDERS:
    registry.register(
        registry.AttributionModel(
            name=f"markov_{_order}",
            kind=registry.PATH,
            description=f"exact removal effects of an order-{_order} Markov chain, "
            "non-converting journeys as nulls",
            order=100 + _order,
            credit=_markov_model(_order),
            module=__name__,
        )
    )
