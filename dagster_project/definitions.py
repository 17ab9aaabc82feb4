"""The one Dagster ``Definitions`` object: assets by stage, resources, jobs, schedules, sensor."""

import logging

import dagster as dg

from dagster_project.assets import (
    attribution,
    experiments,
    ingest,
    mix_model,
    quality,
    reporting,
    transform,
)
from dagster_project.assets import triangulation as triangulation_assets
from dagster_project.resources import WarehouseResource

if logging.getLogger("triangulate").level == logging.NOTSET:
    # the library's INFO messages reach the run logs (the instance manages ``triangulate``)
    logging.getLogger("triangulate").setLevel(logging.INFO)


daily_job = dg.define_asset_job(
    "daily_attribution_job",
    selection=dg.AssetSelection.groups("ingest", "transform", "attribution"),
    description="Daily: load new landing files, rebuild the warehouse models, recompute MTA.",
)
weekly_job = dg.define_asset_job(
    "weekly_measurement_job",
    selection=dg.AssetSelection.groups("experiments", "mix_model", "triangulation", "reporting"),
    description="Weekly: analyse experiments, refit the MMM (calibrated), plan the budget, triangulate, report.",
)
schedules = [
    dg.ScheduleDefinition(job=daily_job, cron_schedule="0 6 * * *", execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.STOPPED),
    dg.ScheduleDefinition(job=weekly_job, cron_schedule="0 8 * * 1", execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.STOPPED),
]  # fmt: skip

defs = dg.Definitions(
    assets=[
        *ingest.raw_assets,
        transform.dbt_models,
        attribution.mta_credit,
        attribution.mta_calibrated_daily,
        experiments.geo_experiment_results,
        mix_model.mmm_fit,
        mix_model.budget_plan,
        triangulation_assets.channel_triangulation,
        triangulation_assets.experiment_plan,
        reporting.measurement_report,
    ],
    asset_checks=quality.quality_checks,
    jobs=[ingest.ingest_job, daily_job, weekly_job],
    schedules=schedules,
    sensors=[ingest.landing_zone_sensor],
    resources={"warehouse": WarehouseResource(), "dbt": transform.dbt_resource()},
)
