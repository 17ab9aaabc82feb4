"""Experiment specs (landing/experiments/*.yaml): parsing, validation and clear errors.

Which entry is current per id is dbt's rule (staging.stg_experiments__registry, tested in
tests/test_geo_experiment_asset.py), not this module's."""

from __future__ import annotations

from datetime import date

import pytest

from triangulate.geo import registry
from triangulate.geo.registry import ExperimentSpec, parse_experiment_file

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


def test_a_list_file_parses_every_entry_in_file_order(tmp_path):
    path = tmp_path / "a.yml"
    path.write_text(
        "- {id: s1, channel: search, kind: heavy_up, treatment_geos: G05, control_geos: [G06, G07],"
        " start: 2026-01-05, end: 2026-01-25, metric: net_revenue}\n"
        "- {id: s0, channel: tv, kind: holdout, treatment_geos: 'G01, G02',"
        " start: 2025-01-05, end: 2025-01-25, metric: orders}\n"
    )
    specs = parse_experiment_file(path)
    assert [s.id for s in specs] == ["s1", "s0"]
    assert specs[0].treatment_geos == ("G05",) and specs[0].control_geos == ("G06", "G07")
    assert specs[1].treatment_geos == ("G01", "G02")


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


def test_no_second_rule_for_the_current_entry_of_an_id(tmp_path):
    """A restated id is not this module's business: no folder loader that dedupes (or
    refuses) ids its own way, and a file repeating an id parses as written."""
    assert not hasattr(registry, "load_experiment_registry")
    path = tmp_path / "twice.yaml"
    item = "\n".join(("- " if i == 0 else "  ") + line for i, line in enumerate(GOOD.splitlines()))
    path.write_text(f"{item}\n{item}\n")
    assert [s.id for s in parse_experiment_file(path)] == ["tv-holdout-1", "tv-holdout-1"]


def test_broken_yaml_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        parse_experiment_file(path)
