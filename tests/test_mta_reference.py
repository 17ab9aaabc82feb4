"""MTA against the known answers of tests/data/mta_reference/README.md.

The expected numbers are ChannelAttribution 2.2.5's heuristics, the exact absorbing-chain
row of the reference, and a brute-force Shapley computed here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from triangulate.cli import app
from triangulate.mta import registry
from triangulate.mta.engine import PATH_MODELS, attribute_paths
from triangulate.mta.paths import (
    AggregatedPathsError,
    aggregated_paths_frame,
    read_aggregated_paths,
)

REFERENCE_CSV = """path,total_conversions,total_conversion_value,total_null
A > B,2,20,3
A > C,1,5,2
B,1,10,4
C > A > B,3,45,1
B > B > C,0,0,2
A,0,0,5
"""


@pytest.fixture
def reference_file(tmp_path):
    file = tmp_path / "paths.csv"
    file.write_text(REFERENCE_CSV)
    return file


@pytest.fixture
def reference(reference_file):
    return read_aggregated_paths(reference_file)


def credit_of(credit: pd.DataFrame, model: str) -> dict[str, tuple[float, float]]:
    rows = credit[credit["model"] == model]
    return {r.channel: (r.conversions, r.revenue) for r in rows.itertuples()}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", {"A": (3, 25), "B": (1, 10), "C": (3, 45)}),
        ("last_touch", {"A": (0, 0), "B": (6, 75), "C": (1, 5)}),
        ("linear", {"A": (2.5, 27.5), "B": (3.0, 35), "C": (1.5, 17.5)}),
    ],
)
def test_heuristics_equal_channelattribution_exactly(reference, model, expected):
    got = credit_of(attribute_paths(reference, models=[model]), model)
    assert got.keys() == expected.keys()
    for channel, (conversions, revenue) in expected.items():
        assert got[channel][0] == pytest.approx(conversions, abs=1e-12)
        assert got[channel][1] == pytest.approx(revenue, abs=1e-12)


def test_position_based_by_hand(reference):
    # A > B (2, 20): 50/50; A > C (1, 5): 50/50; B (1, 10): 100%; C > A > B (3, 45): 40/20/40
    expected = {
        "A": (2 * 0.5 + 1 * 0.5 + 3 * 0.2, 20 * 0.5 + 5 * 0.5 + 45 * 0.2),
        "B": (2 * 0.5 + 1 + 3 * 0.4, 20 * 0.5 + 10 + 45 * 0.4),
        "C": (1 * 0.5 + 3 * 0.4, 5 * 0.5 + 45 * 0.4),
    }
    got = credit_of(attribute_paths(reference, models=["position_based"]), "position_based")
    for channel, values in expected.items():
        assert got[channel] == pytest.approx(values, abs=1e-12)


def test_last_non_direct_skips_direct_unless_alone():
    paths = aggregated_paths_frame(
        pd.DataFrame(
            {
                "path": ["email > direct", "direct > direct", "search > direct > email > direct"],
                "total_conversions": [2, 1, 4],
                "total_conversion_value": [20, 7, 40],
            }
        )
    )
    got = credit_of(attribute_paths(paths, models=["last_non_direct"]), "last_non_direct")
    assert got == {"direct": (1, 7), "email": (6, 60), "search": (0, 0)}


def test_markov_order_1_equals_exact_row(reference):
    got = credit_of(attribute_paths(reference, models=["markov_1"]), "markov_1")
    exact = {"A": 2.260870, "B": 3.680973, "C": 1.058157}
    for channel, conversions in exact.items():
        assert got[channel][0] == pytest.approx(conversions, abs=1e-6)
    # ChannelAttribution 2.2.5, nsim_start=1e6, max_step=20, seed 0 (measured for this
    # file): within 1% for conversions (its removal effects) and revenue (its value
    # removal effects, which normalize to total conversion value).
    channelattribution = {
        "A": (2.259497, 26.208852),
        "B": (3.680347, 45.028171),
        "C": (1.060156, 8.762978),
    }
    for channel, (conversions, revenue) in channelattribution.items():
        assert got[channel][0] == pytest.approx(conversions, rel=0.01)
        assert got[channel][1] == pytest.approx(revenue, rel=0.01)
    assert sum(v[1] for v in got.values()) == pytest.approx(80)


def test_markov_order_1_without_null_column(reference_file, tmp_path):
    no_nulls = tmp_path / "no_nulls.csv"
    no_nulls.write_text(
        "\n".join(",".join(line.split(",")[:3]) for line in reference_file.read_text().splitlines())
        + "\n"
    )
    paths = read_aggregated_paths(no_nulls)
    assert paths["nulls"].sum() == 0
    got = credit_of(attribute_paths(paths, models=["markov_1"]), "markov_1")
    exact = {"A": 2.491525, "B": 2.847458, "C": 1.661017}
    for channel, conversions in exact.items():
        assert got[channel][0] == pytest.approx(conversions, abs=1e-6)


def test_markov_removal_effects_from_the_transition_matrix(reference):
    """P(conversion) = 7/24 and the removal effects of the reference, from its matrix."""
    import duckdb

    from triangulate.mta.markov import removal_effects
    from triangulate.mta.paths import path_touches
    from triangulate.mta.sql import markov_transitions_sql

    touches = path_touches(reference).assign(week_start=None)
    with duckdb.connect() as conn:
        conn.register("touches", touches)
        transitions = conn.execute(markov_transitions_sql("touches", 1)).df()
    result = removal_effects(transitions)
    assert result.conversion_probability == pytest.approx(7 / 24, abs=1e-12)
    expected = {"A": 0.547619, "B": 0.891591, "C": 0.256303}
    for channel, effect in expected.items():
        assert result.removal_effects[channel] == pytest.approx(effect, abs=1e-6)


def brute_force_shapley(paths: pd.DataFrame, column: str) -> dict[str, float]:
    """Shapley by the permutation-weighted definition over all coalitions."""
    sets = [frozenset(p.split(" > ")) for p in paths["path"]]
    values = paths[column].to_numpy()
    players = sorted(set().union(*sets))
    n = len(players)

    def v(coalition: frozenset) -> float:
        return float(sum(x for s, x in zip(sets, values, strict=True) if s <= coalition))

    result = {}
    for j in players:
        others = [p for p in players if p != j]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                total += weight * (v(s | {j}) - v(s))
        result[j] = total
    return result


def test_shapley_equals_brute_force_and_reference(reference):
    got = credit_of(attribute_paths(reference, models=["shapley"]), "shapley")
    conversions = brute_force_shapley(reference, "conversions")
    revenue = brute_force_shapley(reference, "revenue")
    assert conversions == pytest.approx({"A": 2.5, "B": 3.0, "C": 1.5})
    for channel in conversions:
        assert got[channel][0] == pytest.approx(conversions[channel], abs=1e-12)
        assert got[channel][1] == pytest.approx(revenue[channel], abs=1e-12)


def test_shapley_equals_brute_force_on_five_channels():
    rng = np.random.default_rng(7)
    channels = list("VWXYZ")
    paths = [" > ".join(rng.choice(channels, size=rng.integers(1, 6))) for _ in range(40)]
    conversions = rng.integers(0, 5, size=40)
    frame = aggregated_paths_frame(
        pd.DataFrame(
            {
                "path": paths,
                "total_conversions": conversions,
                "total_conversion_value": (conversions * rng.uniform(5, 100, size=40)).round(2),
            }
        )
    )
    got = credit_of(attribute_paths(frame, models=["shapley"]), "shapley")
    expected = brute_force_shapley(frame, "conversions")
    expected_revenue = brute_force_shapley(frame, "revenue")
    for channel in expected:
        assert got[channel][0] == pytest.approx(expected[channel], abs=1e-9)
        assert got[channel][1] == pytest.approx(expected_revenue[channel], abs=1e-9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "path,total_conversions\nA > > B,2\n",
            "row 1, field path: 'A > > B' has an empty channel name",
        ),
        (
            "path,total_conversions\nA,1\nB,x\n",
            "row 2, field total_conversions: 'x' is not a non-negative number",
        ),
        ("path,total_conversions\nA,-1\n", "row 1, field total_conversions: '-1'"),
        ("path,total_conversions,total_null\nA,1,\n,2,3\n", "row 2, field path: empty path"),
        (
            "path,total_conversions,total_conversion_value\nA,1,abc\n",
            "row 1, field total_conversion_value",
        ),
        ("route,total_conversions\nA,1\n", "missing column 'path'"),
        (
            "path,total_conversions,total_conversion_value\nA,0,5\n",
            "row 1, field total_conversion_value: value 5 on a path with no conversions",
        ),
    ],
)
def test_bad_paths_name_file_row_and_field(tmp_path, text, message):
    file = tmp_path / "bad.csv"
    file.write_text(text)
    with pytest.raises(AggregatedPathsError) as error:
        read_aggregated_paths(file)
    assert str(file) in str(error.value)
    assert message in str(error.value)


def test_time_decay_needs_touch_times(reference):
    with pytest.raises(ValueError, match="time_decay needs touch times"):
        attribute_paths(reference, models=["time_decay"])


def test_cli_prints_table_and_writes_csv(reference_file, tmp_path):
    out = tmp_path / "out" / "credit.csv"
    result = CliRunner().invoke(
        app,
        ["mta", "--paths", str(reference_file), "--models", "linear,markov_1", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "markov_1" in result.output and "2.2609" in result.output
    written = pd.read_csv(out)
    assert list(written.columns) == ["model", "channel", "conversions", "revenue"]
    assert set(written["model"]) == {"linear", "markov_1"}
    assert written.loc[written["model"] == "markov_1", "conversions"].sum() == pytest.approx(7)


def test_cli_reports_bad_file_and_exits_nonzero(tmp_path):
    file = tmp_path / "bad.csv"
    file.write_text("path,total_conversions\nA,lots\n")
    result = CliRunner().invoke(app, ["mta", "--paths", str(file)])
    assert result.exit_code == 2
    assert "row 1, field total_conversions" in result.output


def test_cli_default_models_are_the_path_models(reference_file, tmp_path):
    out = tmp_path / "credit.csv"
    result = CliRunner().invoke(app, ["mta", "--paths", str(reference_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert tuple(pd.read_csv(out)["model"].unique()) == PATH_MODELS
    listed = CliRunner().invoke(app, ["mta", "--list-models"])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == list(registry.names())
