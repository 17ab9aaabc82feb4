"""``triangulate mta --paths`` on the files users bring (issue #20).

``tests/fixtures/channel_attribution_paths.csv`` was written for this project in the shape
of ChannelAttribution's ``Data.csv`` (``;``-separated; tests/fixtures/README.md).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from triangulate.cli import app
from triangulate.mta.engine import attribute_paths
from triangulate.mta.paths import aggregated_paths_frame

FIXTURE = Path(__file__).parent / "fixtures" / "channel_attribution_paths.csv"
runner = CliRunner()


def expected_credit(model: str) -> pd.DataFrame:
    raw = pd.read_csv(FIXTURE, sep=";", dtype=str, keep_default_na=False)
    return attribute_paths(aggregated_paths_frame(raw), models=[model])


def test_a_semicolon_separated_channelattribution_file_is_read_as_is():
    result = runner.invoke(app, ["mta", "--paths", str(FIXTURE), "--models", "first_touch"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"{FIXTURE}: 16 paths, 28 conversions, 29.91 revenue")
    assert "81 non-converting journeys" in first
    assert result.output.splitlines()[1].split() == ["model", "channel", "conversions", "revenue"]


def test_sep_names_the_delimiter(tmp_path):
    tabbed = tmp_path / "paths.tsv"
    tabbed.write_text(FIXTURE.read_text().replace(";", "\t"))
    named = runner.invoke(app, ["mta", "--paths", str(tabbed), "--sep", "tab", "--model", "linear"])
    assert named.exit_code == 0, named.output
    assert "16 paths, 28 conversions" in named.output.splitlines()[0]
    wrong = runner.invoke(app, ["mta", "--paths", str(FIXTURE), "--sep", ","])
    assert wrong.exit_code == 2
    assert "missing column 'path'" in wrong.output


def test_format_csv_prints_plain_numbers_scripts_can_parse():
    big = FIXTURE.parent / "channel_attribution_paths.csv"
    result = runner.invoke(
        app, ["mta", "--paths", str(big), "--model", "first_touch", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    # stdout holds the credits only: the summary line went to stderr
    assert result.stdout.splitlines()[0] == "model,channel,conversions,revenue"
    parsed = pd.read_csv(io.StringIO(result.stdout))
    pd.testing.assert_frame_equal(parsed, expected_credit("first_touch"), check_dtype=False)
    assert "16 paths" in result.stderr


def test_format_json_prints_records():
    result = runner.invoke(
        app, ["mta", "--paths", str(FIXTURE), "--model", "last_touch", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    expected = expected_credit("last_touch")
    assert [r["channel"] for r in records] == expected["channel"].tolist()
    assert [r["revenue"] for r in records] == expected["revenue"].tolist()


def test_table_format_keeps_thousands_separators_for_people(tmp_path):
    paths = tmp_path / "big.csv"
    paths.write_text("path,total_conversions,total_conversion_value\nA > B,1500,123456.5\n")
    result = runner.invoke(app, ["mta", "--paths", str(paths), "--model", "first_touch"])
    assert result.exit_code == 0, result.output
    assert "123,456.50 revenue" in result.output.splitlines()[0]
    assert "1,500.0000" in result.output
    scripted = runner.invoke(
        app, ["mta", "--paths", str(paths), "--model", "first_touch", "--format", "csv"]
    )
    assert scripted.stdout.splitlines()[1] == "first_touch,A,1500.0,123456.5"
