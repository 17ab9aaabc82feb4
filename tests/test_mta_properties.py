"""Property tests (hypothesis) for every model on aggregated paths.

Also cross-checks the SQL-built Markov chains of order 1 to 3 against a dense chain built
here straight from the path strings.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triangulate.mta.engine import PATH_MODELS, attribute_paths
from triangulate.mta.paths import aggregated_paths_frame

CHANNELS = ["A", "B", "C", "D", "direct"]

path_rows = st.lists(
    st.tuples(
        st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=6),
        st.integers(0, 5),  # conversions
        st.floats(1, 100, allow_nan=False),  # value per conversion
        st.integers(0, 5),  # nulls
    ),
    min_size=1,
    max_size=12,
).filter(lambda rows: any(conversions > 0 for _, conversions, _, _ in rows))

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def to_paths(rows, rename=lambda c: c) -> pd.DataFrame:
    return aggregated_paths_frame(
        pd.DataFrame(
            {
                "path": [" > ".join(rename(c) for c in channels) for channels, _, _, _ in rows],
                "total_conversions": [conversions for _, conversions, _, _ in rows],
                "total_conversion_value": [
                    round(conversions * value, 2) for _, conversions, value, _ in rows
                ],
                "total_null": [nulls for _, _, _, nulls in rows],
            }
        )
    )


def by_model_channel(credit: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    return {(r.model, r.channel): (r.conversions, r.revenue) for r in credit.itertuples()}


@SETTINGS
@given(path_rows)
def test_credits_sum_to_totals_for_every_model(rows):
    paths = to_paths(rows)
    credit = attribute_paths(paths)
    assert set(credit["model"]) == set(PATH_MODELS)
    totals = credit.groupby("model")[["conversions", "revenue"]].sum()
    for model, row in totals.iterrows():
        assert row["conversions"] == pytest.approx(paths["conversions"].sum(), rel=1e-9), model
        assert row["revenue"] == pytest.approx(paths["revenue"].sum(), rel=1e-9), model
    assert (credit["conversions"] >= -1e-12).all()


@SETTINGS
@given(path_rows, st.permutations(CHANNELS))
def test_permuting_channel_names_permutes_credits(rows, permuted):
    """Every model but last_non_direct treats a channel name as a label; last_non_direct
    gives 'direct' a meaning, so it is checked on permutations that keep 'direct' fixed
    (the same rows with the other names permuted among themselves)."""
    mapping = dict(zip(CHANNELS, permuted, strict=True))
    others = [c for c in permuted if c != "direct"]
    fixing_direct = {
        **dict(zip([c for c in CHANNELS if c != "direct"], others, strict=True)),
        "direct": "direct",
    }
    original = by_model_channel(attribute_paths(to_paths(rows)))
    renamed = by_model_channel(attribute_paths(to_paths(rows, rename=mapping.__getitem__)))
    renamed_fixing_direct = by_model_channel(
        attribute_paths(
            to_paths(rows, rename=fixing_direct.__getitem__), models=["last_non_direct"]
        )
    )
    for (model, channel), (conversions, revenue) in original.items():
        if model == "last_non_direct":
            got = renamed_fixing_direct[(model, fixing_direct[channel])]
        else:
            got = renamed[(model, mapping[channel])]
        assert got[0] == pytest.approx(conversions, rel=1e-9, abs=1e-9), (model, channel)
        assert got[1] == pytest.approx(revenue, rel=1e-9, abs=1e-9), (model, channel)


@SETTINGS
@given(path_rows)
def test_a_channel_on_no_weighted_path_gets_zero(rows):
    base = by_model_channel(attribute_paths(to_paths(rows)))
    # 'Z' only on a path that counts no conversion and no non-converting journey
    with_z = by_model_channel(attribute_paths(to_paths([*rows, (["A", "Z", "B"], 0, 1.0, 0)])))
    for model in PATH_MODELS:
        assert with_z[(model, "Z")] == (0.0, 0.0)
    for key, (conversions, revenue) in base.items():
        assert with_z[key][0] == pytest.approx(conversions, rel=1e-9, abs=1e-12)
        assert with_z[key][1] == pytest.approx(revenue, rel=1e-9, abs=1e-12)
    # and a channel nowhere in the input is nowhere in the output
    assert {channel for _, channel in base} <= {c for channels, _, _, _ in rows for c in channels}


def dense_markov_credit(rows, order: int) -> dict[str, float]:
    """Removal-effect credit from a dense chain built here from the raw rows."""
    moves: dict[tuple, float] = defaultdict(float)
    converts: dict[tuple, float] = defaultdict(float)
    fails: dict[tuple, float] = defaultdict(float)
    for channels, conversions, _, nulls in rows:
        weight = conversions + nulls
        if weight == 0:
            continue
        collapsed = [c for i, c in enumerate(channels) if i == 0 or channels[i - 1] != c]
        previous: tuple = ("(start)",)
        for i in range(len(collapsed)):
            state = tuple(collapsed[max(0, i - order + 1) : i + 1])
            moves[(previous, state)] += weight
            previous = state
        converts[previous] += conversions
        fails[previous] += nulls
    states = sorted({s for pair in moves for s in pair})
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    q = np.zeros((n, n))
    r = np.zeros(n)
    for (a, b), w in moves.items():
        q[index[a], index[b]] += w
    for s, w in converts.items():
        r[index[s]] += w
    totals = q.sum(axis=1) + r + np.array([fails.get(s, 0.0) for s in states])
    totals[totals == 0] = 1.0
    q, r = q / totals[:, None], r / totals
    start = index[("(start)",)]

    def p_conversion(removed: str | None) -> float:
        keep = [i for i, s in enumerate(states) if removed not in s]
        sub = np.eye(len(keep)) - q[np.ix_(keep, keep)]
        return float(np.linalg.solve(sub, r[keep])[keep.index(start)])

    full = p_conversion(None)
    channels = sorted({c for s in states for c in s} - {"(start)"})
    effects = {c: 1 - p_conversion(c) / full for c in channels}
    total_conversions = sum(conversions for _, conversions, _, _ in rows)
    return {c: total_conversions * e / sum(effects.values()) for c, e in effects.items()}


@SETTINGS
@given(path_rows, st.sampled_from([1, 2, 3]))
def test_markov_matches_a_dense_chain_built_from_the_paths(rows, order):
    credit = attribute_paths(to_paths(rows), models=[f"markov_{order}"])
    got = dict(zip(credit["channel"], credit["conversions"], strict=True))
    expected = dense_markov_credit(rows, order)
    for channel, value in got.items():
        assert value == pytest.approx(expected.get(channel, 0.0), rel=1e-7, abs=1e-9), channel
