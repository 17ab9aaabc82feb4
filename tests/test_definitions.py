"""The Dagster definitions load, are wired as documented, and the sensor and schedules
produce the expected run requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests import STAGE_GROUPS

ROOT = Path(__file__).resolve().parent.parent


def test_dagster_definitions_validate(home: Path) -> None:
    env = {**os.environ, "TRIANGULATE_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "dagster_project.definitions"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def test_assets_are_grouped_by_stage_and_warehouse_assets_share_one_pool() -> None:
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {
        graph.get(k).group_name
        for k in graph.get_all_asset_keys()
        if graph.get(k).is_materializable
    }
    assert set(STAGE_GROUPS) <= groups
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert node.pools == {"warehouse"}, (
                f"{key.to_user_string()} is outside the warehouse pool"
            )
    # every gated table has a blocking GX check
    from triangulate.quality import GATED_TABLES

    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    for table in GATED_TABLES:
        schema, name = table.split(".")
        assert (f"{schema}/{name}", f"gx_{name}") in checks
    # the MTA and MMM assets sit downstream of the marts they read
    mta_parents = graph.get(dg.AssetKey(["measurement", "mta_channel_credit"])).parent_keys
    assert dg.AssetKey(["marts", "fct_conversion_journeys"]) in mta_parents
    assert dg.AssetKey(["marts", "fct_journey_touches"]) in mta_parents  # the journey owner
    assert (
        dg.AssetKey(["marts", "mmm_weekly_input"])
        in graph.get(dg.AssetKey(["measurement", "mmm_channel_summary"])).parent_keys
    )
    # dbt sources line up with the ingest assets
    staging = graph.get(dg.AssetKey(["staging", "stg_stripe__events"]))
    assert dg.AssetKey(["raw", "stripe_events"]) in staging.parent_keys


def test_pool_limit_is_one_in_the_instance_config(home: Path) -> None:
    import yaml

    from dagster_project.instance import ensure_dagster_home

    config = yaml.safe_load((ensure_dagster_home() / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_landing_zone_sensor_requests_runs_for_new_files_only(home_with_landing: Path) -> None:
    from dagster_project.assets.ingest import landing_zone_sensor

    with dg.instance_for_test() as instance:
        first = landing_zone_sensor(dg.build_sensor_context(instance=instance))
        assert len(first.run_requests) == 1
        requested = {k.to_user_string() for k in first.run_requests[0].asset_selection}
        assert {"raw/stripe_events", "raw/segment_events", "raw/meta_insights"} <= requested
        again = landing_zone_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert not again.run_requests  # nothing new
        new = home_with_landing / "landing/offline/late_tv.csv"
        new.write_text(
            "date,channel,campaign,geo,spend,currency\n2025-12-22,tv,tv_spot_primetime,501,100.00,USD\n"
        )
        os.utime(new, (json.loads(first.cursor)["offline"] + 10,) * 2)
        third = landing_zone_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert [k.to_user_string() for k in third.run_requests[0].asset_selection] == [
            "raw/offline_spend"
        ]


@pytest.mark.parametrize(
    ("job", "groups", "cron"),
    [
        ("daily_attribution_job", {"ingest", "transform", "attribution"}, "0 6 * * *"),
        (
            "weekly_measurement_job",
            {"experiments", "mix_model", "triangulation", "reporting"},
            "0 8 * * 1",
        ),
    ],
)
def test_schedules_run_the_daily_and_weekly_jobs(job: str, groups: set[str], cron: str) -> None:
    from dagster_project.definitions import defs

    schedule = next(s for s in defs.schedules if s.job_name == job)
    assert schedule.cron_schedule == cron
    with dg.instance_for_test() as instance:
        request = schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests[
            0
        ]
    assert request.job_name is None or request.job_name == job
    job_def = defs.resolve_job_def(job)
    selected = job_def.asset_layer.selected_asset_keys
    graph = defs.resolve_asset_graph()
    assert {graph.get(k).group_name for k in selected} == groups


def test_cli_lists_every_command() -> None:
    from typer.testing import CliRunner

    from dagster_project.cli import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "demo", "serve", "run", "report", "mta", "geo", "mmm"):
        assert command in result.output


def test_a_manifest_older_than_a_dbt_file_is_prepared_again(tmp_path) -> None:
    """A test whose arguments changed gets a new unique id: an old manifest would make the
    Dagster checks miss it and fail dbt_models although the test passed."""
    import os

    from dagster_project.assets.transform import manifest_is_stale

    model = tmp_path / "models" / "m.yml"
    model.parent.mkdir()
    model.write_text("models: []\n")
    manifest = tmp_path / "target" / "manifest.json"
    assert manifest_is_stale(tmp_path, manifest)
    manifest.parent.mkdir()
    manifest.write_text("{}")
    os.utime(model, (1_000, 1_000))
    (tmp_path / "target" / "run_results.json").write_text("{}")  # target/ is not a source
    assert not manifest_is_stale(tmp_path, manifest)
    os.utime(model, None)
    os.utime(manifest, (2_000, 2_000))
    assert manifest_is_stale(tmp_path, manifest)
