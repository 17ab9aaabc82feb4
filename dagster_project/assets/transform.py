"""Transform: the dbt project as Dagster assets (group ``transform``); dbt tests become
asset checks."""

import os
import shutil
import sys
from functools import cache
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from dagster_project.assets import WAREHOUSE_POOL
from dagster_project.paths import DBT_PROJECT_DIR


def dbt_target() -> str:
    return os.environ.get("TRIANGULATE_DBT_TARGET", "duckdb")


@cache
def dbt_project() -> DbtProject:
    """The dbt project, built once; the manifest is prepared when it is missing (fresh
    clone, tests, CI) and on every load under ``dagster dev``."""
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=dbt_target()
    )
    if not project.manifest_path.exists():
        project.preparer.prepare(project)
    else:
        project.prepare_if_dev()
    return project


class TriangulateTranslator(DagsterDbtTranslator):
    """dbt models and seeds are keyed ``[schema, name]`` (``marts/fct_orders``), like the
    warehouse tables they build, and land in group ``transform``; sources keep the asset
    keys their ``meta.dagster.asset_key`` names (the ingest assets)."""

    def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            schema = (
                dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
            )
            return dg.AssetKey([schema, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props) -> str | None:
        return (
            "transform"
            if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot")
            else None
        )


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """Arguments of the one dbt command the transform assets run."""
    return ["build", *(["--full-refresh"] if full_refresh else [])]


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=TriangulateTranslator(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """dbt build of the selected models (staging, intermediate, marts) with their tests."""
    yield from dbt.cli(dbt_build_args(), context=context).stream()


def dbt_resource() -> DbtCliResource:
    """dbt from this environment even when its ``bin`` is not on PATH (``.venv/bin/dagster dev``)."""
    executable = shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))
    return DbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        target=dbt_target(),
        dbt_executable=executable,
    )
