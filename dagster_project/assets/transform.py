"""Transform: the dbt project as Dagster assets (group ``transform``); dbt tests become
asset checks."""

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from dagster_project.assets import WAREHOUSE_POOL, table_key
from triangulate.paths import DBT_PROJECT_DIR, triangulate_home


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


def warehouse_table(node: dict) -> str:
    """``schema.name`` of the table a dbt model, seed or snapshot builds (its custom
    ``schema`` config, else the target schema)."""
    return f"{node.get('config', {}).get('schema') or node['schema']}.{node['name']}"


@cache
def _table_parents() -> dict[str, list[str]]:
    """The dbt manifest, parsed once: each table a dbt node builds -> the tables of its
    parent nodes (models, seeds, snapshots; sources are the ingest assets)."""
    manifest = json.loads(Path(dbt_project().manifest_path).read_text())
    tables = {
        uid: warehouse_table(node)
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }
    return {
        table: [tables[p] for p in manifest["parent_map"].get(uid, []) if p in tables]
        for uid, table in tables.items()
    }


class TriangulateTranslator(DagsterDbtTranslator):
    """dbt models and seeds are keyed ``[schema, name]`` (``marts/fct_orders``), like the
    warehouse tables they build, and land in group ``transform``; sources keep the asset
    keys their ``meta.dagster.asset_key`` names (the ingest assets)."""

    def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return table_key(warehouse_table(dbt_resource_props))
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props) -> str | None:
        return (
            "transform"
            if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot")
            else None
        )


def with_gated_upstream(*tables: str) -> list[dg.AssetKey]:
    """Asset keys of ``tables`` plus every gated table (one with a GX suite) they are built
    from, read from the dbt manifest.

    Why: a blocking asset check stops only the assets that depend on the checked asset
    directly, and every mart is built in the one dbt step. A model that reads
    ``marts.mmm_weekly_input`` would still run after ``marts.fct_orders`` failed its gate.
    Declaring the gated marts upstream of its inputs as dependencies makes each of those
    gates stop the model.
    """
    from triangulate.quality import GATED_TABLES

    parents = _table_parents()
    keys = [table_key(t) for t in tables]
    seen: set[str] = set()
    todo = [t for t in tables if t in parents]
    while todo:
        for parent in parents[todo.pop()]:
            if parent in seen:
                continue
            seen.add(parent)
            todo.append(parent)
            if parent in GATED_TABLES and table_key(parent) not in keys:
                keys.append(table_key(parent))
    return keys


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


@contextmanager
def dbt_environment() -> Iterator[None]:
    """``TRIANGULATE_HOME`` set to Python's data directory (:func:`triangulate_home`, an
    absolute path) while a dbt command starts, then restored.

    Why: dbt runs with the dbt project as its working directory, so without the variable
    the profile's ``{{ env_var('TRIANGULATE_HOME', 'data') }}/warehouse.duckdb`` would be
    ``dbt_project/data/warehouse.duckdb`` while Python uses ``./data`` of the process's
    working directory. One resolution, Python's, handed to dbt explicitly.
    """
    saved = os.environ.get("TRIANGULATE_HOME")
    os.environ["TRIANGULATE_HOME"] = str(triangulate_home())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TRIANGULATE_HOME", None)
        else:
            os.environ["TRIANGULATE_HOME"] = saved


class TriangulateDbtCliResource(DbtCliResource):
    """dbt commands on the warehouse Python opens: each starts inside
    :func:`dbt_environment` (the subprocess and dagster-dbt's in-process adapter both read
    ``TRIANGULATE_HOME`` when the command starts)."""

    def cli(self, args, **kwargs):
        with dbt_environment():
            return super().cli(args, **kwargs)


def dbt_resource() -> DbtCliResource:
    """dbt from this environment even when its ``bin`` is not on PATH (``.venv/bin/dagster dev``)."""
    executable = shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))
    return TriangulateDbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        target=dbt_target(),
        dbt_executable=executable,
    )
