"""Experiments: analyse every registered geo test (group ``experiments``).

Spend change of a test = spend in the treatment geos over the window minus what they
would have spent: the pre-test run rate scaled by how the control geos' spend moved from
the baseline to the window (:func:`triangulate.geo.calibration.window_change` with
``reference_geos``), so national flighting and seasonal budgets do not count as the test.
A holdout's spend change is negative and a channel that works gets a positive iROAS.

The revenue panel is ``marts.mmm_weekly_input`` (zero-filled, every week x geo); each
experiment's ``metric`` names one of its columns (``net_revenue``, ``gross_revenue``,
``orders``).

The experiments are those of dbt's ``staging.stg_experiments__registry``: one row per id,
the entry of the latest landing file when an id was registered again (that model owns the
rule). Each row is validated into an :class:`~triangulate.geo.registry.ExperimentSpec`
here; no second dedupe.

One experiment never stops the others: an experiment that cannot be analysed (unknown
geos, a window outside the data, a spend change that cannot be measured) gets one
``status`` ``error`` row naming it, its landing file and why; experiments that overlap in
geos and dates are analysed with ``status`` ``warning`` (see
:func:`triangulate.geo.analysis.analyze_registry`). Both are logged on the run.
"""

import json

import dagster as dg

from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.assets.transform import with_gated_upstream
from dagster_project.resources import WarehouseResource
from triangulate.geo.analysis import analyze_registry, with_panel_geos
from triangulate.geo.calibration import ExperimentSpend, experiment_spend
from triangulate.geo.registry import ExperimentSpec
from triangulate.warehouse import replace_table

RESULTS_TABLE = "measurement.geo_experiment_results"
REGISTRY_MODEL = "staging.stg_experiments__registry"
"""The dbt model holding the current registry entry per experiment id."""


def _geos(text: str | None) -> list[str] | str | None:
    """A geo list column of the registry model: JSON array text, or the text as written
    (``'G01, G02'``, split by :class:`ExperimentSpec`)."""
    if text is None:
        return None
    return json.loads(text) if text.lstrip().startswith("[") else text


def registered_experiments(conn) -> list[ExperimentSpec]:
    """The current experiment specs, one per id, from ``staging.stg_experiments__registry``
    (dbt picks the entry of the latest landing file), sorted by start and id; errors name
    the landing file and entry."""
    columns = (
        "experiment_id", "channel", "experiment_kind", "treatment_geos", "control_geos",
        "start_date", "end_date", "metric", "spend_change", "description", "source_file",
        "source_line",
    )  # fmt: skip
    rows = conn.execute(
        f"select {', '.join(columns)} from {REGISTRY_MODEL} order by start_date, experiment_id"
    ).fetchall()
    specs = []
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        spec = {
            "id": row["experiment_id"], "channel": row["channel"], "kind": row["experiment_kind"],
            "treatment_geos": _geos(row["treatment_geos"]), "control_geos": _geos(row["control_geos"]),
            "start": row["start_date"], "end": row["end_date"], "metric": row["metric"],
            "spend_change": row["spend_change"], "description": row["description"],
        }  # fmt: skip
        source = f"landing/{row['source_file']} entry {row['source_line']}"
        specs.append(ExperimentSpec.from_dict(spec, source=source))
    return specs


def _panel_spelling(spec: ExperimentSpec, geos) -> ExperimentSpec:
    """``spec`` with its geos spelt as ``geos`` (the revenue panel's or the spend table's)
    spell them (``g09`` -> ``G09``), so that spend and revenue both find them; as registered
    when some geo is unknown (:func:`~triangulate.geo.analysis.analyze_registry` then names
    it)."""
    try:
        return with_panel_geos(spec, list(geos))
    except ValueError:
        return spec


EXPERIMENT_METRICS = ("net_revenue", "gross_revenue", "orders")
"""Columns of ``marts.mmm_weekly_input`` an experiment's ``metric`` may name."""


def experiment_spends(conn, specs: list[ExperimentSpec]) -> dict[str, ExperimentSpend]:
    """Each experiment's spend in the treatment geos and the market, by experiment id, from
    ``marts.fct_daily_channel_spend`` (see the module docstring and
    :func:`triangulate.geo.calibration.experiment_spend`)."""
    spend = conn.execute("select date, geo, channel, spend from marts.fct_daily_channel_spend").df()
    geos = spend["geo"].astype(str).unique()
    specs = [_panel_spelling(s, geos) for s in specs]  # registered `g09` spends as `G09`
    return {
        s.id: experiment_spend(spend, s.channel, s.treatment_geos, s.control_geos, s.start, s.end)
        for s in specs
    }


def experiment_spend_changes(
    conn, specs: list[ExperimentSpec], errors: dict[str, str] | None = None
) -> dict[str, float]:
    """Spend change per experiment id (reporting currency, negative for a holdout).

    Reference geos: the spec's control geos, or every geo not treated when it names none.
    With ``errors`` (a dict), an experiment whose spend change cannot be measured is left
    out and ``errors[id]`` says why, instead of raising for all.
    """
    if errors is None:
        return {k: v.treated.change for k, v in experiment_spends(conn, specs).items()}
    changes = {}
    for spec in specs:
        try:
            changes[spec.id] = experiment_spends(conn, [spec])[spec.id].treated.change
        except ValueError as exc:
            errors[spec.id] = f"spend change not measurable: {exc}"
    return changes


@dg.asset(
    key=table_key(RESULTS_TABLE),
    deps=[
        table_key(REGISTRY_MODEL),  # built by dbt: the asset runs after the dbt step
        *with_gated_upstream("marts.mmm_weekly_input", "marts.fct_daily_channel_spend"),
    ],
    group_name="experiments",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-science"],
    description="Every registered geo experiment (staging.stg_experiments__registry: the latest entry per id) "
    "x method (synthetic control as GeoLift's default, difference-in-differences): lift, conformal interval, "
    "p-value, spend change (against the control geos' spend trend; money in the marts' currency), on the "
    "spec's weekly metric by geo: incremental revenue and iROAS for a money metric (net_revenue), "
    "incremental_conversions and cost_per_incremental_conversion for a count (orders); metric_kind says which.",
)
def geo_experiment_results(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.get_connection() as conn:
        specs = registered_experiments(conn)
        # the MMM input mart is zero-filled (every week x geo), which the estimators need
        revenue = conn.execute(
            f"select week_start, geo, {', '.join(EXPERIMENT_METRICS)} from marts.mmm_weekly_input"
        ).df()
        specs = [_panel_spelling(s, revenue["geo"].astype(str).unique()) for s in specs]
        errors: dict[str, str] = {}
        changes = experiment_spend_changes(conn, specs, errors)
        results = analyze_registry(specs, revenue, spend_changes=changes, errors=errors)
        replace_table(conn, RESULTS_TABLE, results)
    flagged = results[results["status"] != "ok"].drop_duplicates("experiment_id")
    for row in flagged.itertuples(index=False):
        log = context.log.error if row.status == "error" else context.log.warning
        log(f"{RESULTS_TABLE}: experiment {row.experiment_id}: {row.status}: {row.notes}")
    shown = [
        "experiment_id",
        "channel",
        "method",
        "lift_pct",
        "ci_low",
        "ci_high",
        "p_value",
        "metric",
        "incremental_revenue",
        "iroas",
        "incremental_conversions",
        "cost_per_incremental_conversion",
        "status",
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(results),
            "experiments": len(specs),
            "not_analysed": int((flagged["status"] == "error").sum()),
            "warnings": int((flagged["status"] == "warning").sum()),
            "results": dg.MetadataValue.md(
                results[shown].round(3).to_markdown(index=False) if len(results) else "none"
            ),
        }
    )
