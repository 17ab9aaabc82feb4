"""The experiment registry (landing/experiments/*.yaml): parsing and clear errors."""

from __future__ import annotations

from datetime import date

import pytest

from triangulate.geo.registry import (
    ExperimentSpec,
    load_experiment_registry,
    parse_experiment_file,
)

GOOD = """\
id: tv-holdout-1
channel: tv
kind: holdout
treatment_geos: [G01, G02]
start: 2026-03-02
end: 2026-03-29
metric: net_revenue
spend_change: -120000
"""


def test_a_good_file_parses(tmp_path):
    path = tmp_path / "tv.yaml"
    path.write_text(GOOD)
    (spec,) = parse_experiment_file(path)
    assert spec == ExperimentSpec(
        id="tv-holdout-1", channel="tv", kind="holdout", treatment_geos=("G01", "G02"),
        control_geos=None, start=date(2026, 3, 2), end=date(2026, 3, 29),
        metric="net_revenue", spend_change=-120000.0,
    )  # fmt: skip


def test_registry_reads_every_file_sorted_by_start(tmp_path):
    (tmp_path / "b.yaml").write_text(GOOD)
    (tmp_path / "a.yml").write_text(
        "- {id: s1, channel: search, kind: heavy_up, treatment_geos: G05, control_geos: [G06, G07],"
        " start: 2026-01-05, end: 2026-01-25, metric: net_revenue}\n"
    )
    specs = load_experiment_registry(tmp_path)
    assert [s.id for s in specs] == ["s1", "tv-holdout-1"]
    assert specs[0].treatment_geos == ("G05",) and specs[0].control_geos == ("G06", "G07")
    assert load_experiment_registry(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("kind: holdout", "kind: pulse"), "field 'kind' must be holdout or heavy_up"),
        (("start: 2026-03-02", "start: 2026-04-30"), "field 'end' .* is before 'start'"),
        (("start: 2026-03-02", "start: next monday"), "field 'start' must be a date"),
        (
            ("treatment_geos: [G01, G02]", "treatment_geos: []"),
            "field .treatment_geos. must be a non-empty list",
        ),
        (("treatment_geos: [G01, G02]", "treatment_geos: [G01, G01]"), "lists geo.*twice: G01"),
        (
            ("metric: net_revenue", "metric: net_revenue\ncontrol_geos: [G02]"),
            "repeats treatment geo",
        ),
        (("channel: tv\n", ""), "missing required field.*channel"),
        (
            ("metric: net_revenue", "metric: net_revenue\ntreated_geos: [G03]"),
            "unknown field.*treated_geos",
        ),
        (("spend_change: -120000", "spend_change: lots"), "field 'spend_change' must be a number"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path, edit, message):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ValueError, match=message) as err:
        parse_experiment_file(path)
    assert str(path) in str(err.value)


def test_duplicate_ids_name_both_files(tmp_path):
    (tmp_path / "one.yaml").write_text(GOOD)
    (tmp_path / "two.yaml").write_text(GOOD)
    with pytest.raises(
        ValueError, match=r"two.yaml: experiment id 'tv-holdout-1' is already used in .*one.yaml"
    ):
        load_experiment_registry(tmp_path)


def test_broken_yaml_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        parse_experiment_file(path)
