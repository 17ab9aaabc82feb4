"""The MTA model registry: a model registered in one place (here, this test file) is listed
by the CLI, runs through ``triangulate mta`` and both engines, and lands in the output,
with no other file touched."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.test_mta_reference import REFERENCE_CSV
from tests.test_mta_warehouse import create_tables, random_world
from triangulate.cli import app
from triangulate.mta import registry
from triangulate.mta.engine import attribute_from_warehouse, attribute_paths
from triangulate.mta.paths import EncodedPaths, read_aggregated_paths
from triangulate.mta.registry import AttributionModel, ModelContext, ModelOptions
from triangulate.mta.shapley import shapley_credit

SPLIT, EVEN, SQL_ONLY = "first_last_split", "even_split", "sql_only_linear"


def first_last_split(paths: EncodedPaths, options: ModelOptions) -> np.ndarray:
    """Half to the first touch, half to the last (all of it when there is one touch)."""
    length = np.repeat(paths.lengths, paths.lengths)
    position = paths.touch_position
    return 0.5 * (position == 0) + 0.5 * (position == length - 1)


def even_split(paths: EncodedPaths, context: ModelContext) -> pd.DataFrame:
    """Each distinct channel of a converting journey gets an equal share (= Shapley)."""
    return shapley_credit(paths)


@pytest.fixture
def extra_models():
    models = [
        AttributionModel(
            name=SPLIT,
            kind="touch",
            description="half first touch, half last touch",
            path_weights=first_last_split,
            sql_weight="0.5 * (case when position = 1 then 1.0 else 0.0 end) "
            "+ 0.5 * (case when position = path_length then 1.0 else 0.0 end)",
        ),
        AttributionModel(
            name=EVEN, kind="path", description="equal share per channel", credit=even_split
        ),
        AttributionModel(
            name=SQL_ONLY,
            kind="touch",
            description="linear, warehouse only",
            sql_weight="1.0 / path_length",
            needs="the warehouse",
        ),
    ]
    for model in models:
        registry.register(model)
    yield models
    for model in models:
        registry.unregister(model.name)


@pytest.fixture
def reference_file(tmp_path):
    file = tmp_path / "paths.csv"
    file.write_text(REFERENCE_CSV)
    return file


def by_channel(credit: pd.DataFrame, model: str, keys=("channel",)) -> pd.DataFrame:
    rows = credit[credit["model"] == model]
    return rows.groupby(list(keys))[["conversions", "revenue"]].sum().sort_index()


def test_the_cli_lists_registered_models(extra_models) -> None:
    result = CliRunner().invoke(app, ["mta", "--list-models"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()}
    assert lines[SPLIT][1:3] == ["touch", "paths+warehouse"]
    assert lines[EVEN][1:3] == ["path", "paths+warehouse"]
    assert lines[SQL_ONLY][1:3] == ["touch", "warehouse"]
    assert {"first_touch", "time_decay", "markov_2", "ordered_shapley"} <= set(lines)
    assert list(lines)[-3:] == [EVEN, SPLIT, SQL_ONLY]  # after the built-ins, by name


def test_the_cli_runs_a_registered_model_and_names_the_valid_ones(
    extra_models, reference_file, tmp_path
) -> None:
    out = tmp_path / "credit.csv"
    result = CliRunner().invoke(
        app,
        ["mta", "--paths", str(reference_file), "--model", f"{SPLIT},{EVEN}", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert SPLIT in result.output and EVEN in result.output
    assert set(pd.read_csv(out)["model"]) == {SPLIT, EVEN}
    wrong = CliRunner().invoke(app, ["mta", "--paths", str(reference_file), "--models", "nope"])
    assert wrong.exit_code == 2
    assert "unknown model(s) ['nope']" in wrong.output and SPLIT in wrong.output
    warehouse_only = CliRunner().invoke(
        app, ["mta", "--paths", str(reference_file), "--models", SQL_ONLY]
    )
    assert warehouse_only.exit_code == 2
    assert f"{SQL_ONLY} needs the warehouse" in warehouse_only.output


def test_attribute_paths_runs_registered_models_by_default(extra_models, reference_file) -> None:
    paths = read_aggregated_paths(reference_file)
    credit = attribute_paths(paths)
    assert list(credit["model"].unique())[-2:] == [EVEN, SPLIT]
    assert SQL_ONLY not in set(credit["model"])
    halves = (by_channel(credit, "first_touch") + by_channel(credit, "last_touch")) / 2
    pd.testing.assert_frame_equal(by_channel(credit, SPLIT), halves)
    pd.testing.assert_frame_equal(by_channel(credit, EVEN), by_channel(credit, "shapley"))


def test_the_warehouse_engine_writes_registered_models(extra_models) -> None:
    touches, journeys = random_world(4)
    with duckdb.connect() as conn:
        create_tables(conn, touches, journeys)
        result = attribute_from_warehouse(conn)  # the asset's call: default models
    credit, campaigns = result["channel_credit"], result["campaign_credit"]
    assert list(credit["model"].unique())[-3:] == [EVEN, SPLIT, SQL_ONLY]
    assert "ordered_shapley" not in set(credit["model"])
    keys = ("week_start", "channel")
    halves = (by_channel(credit, "first_touch", keys) + by_channel(credit, "last_touch", keys)) / 2
    pd.testing.assert_frame_equal(by_channel(credit, SPLIT, keys), halves, atol=1e-9)
    pd.testing.assert_frame_equal(
        by_channel(credit, EVEN, keys), by_channel(credit, "shapley", keys), atol=1e-9
    )
    pd.testing.assert_frame_equal(
        by_channel(credit, SQL_ONLY, keys), by_channel(credit, "linear", keys), atol=1e-9
    )
    # touch models credit campaigns exactly, path models by the linear mix: both drill down
    assert {SPLIT, EVEN, SQL_ONLY} <= set(campaigns["model"])


def test_registration_is_checked() -> None:
    with pytest.raises(ValueError, match="lower-case identifier"):
        AttributionModel(name="Bad Name", kind="touch", description="", sql_weight="1.0")
    with pytest.raises(ValueError, match="give credit"):
        AttributionModel(name="x", kind="path", description="", sql_weight="1.0")
    with pytest.raises(ValueError, match="give path_weights and/or sql_weight"):
        AttributionModel(name="x", kind="touch", description="")
    with pytest.raises(ValueError, match=r"already registered by triangulate\.mta\.heuristics"):
        registry.register(
            AttributionModel(name="linear", kind="touch", description="", sql_weight="1.0")
        )
    assert registry.get("linear").module == "triangulate.mta.heuristics"
