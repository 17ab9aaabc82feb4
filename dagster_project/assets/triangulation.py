"""Triangulation: MTA vs MMM vs experiments per channel, with a decision (group
``triangulation``). The rules live in :mod:`triangulate.triangulation`."""

import dagster as dg

from dagster_project.assets import WAREHOUSE_POOL, png_markdown, table_key
from dagster_project.resources import WarehouseResource
from triangulate.channels import load_channels
from triangulate.mta.calibration import DECISION_MTA_MODEL, warehouse_calibration_factors
from triangulate.triangulation import triangulate, triangulation_inputs
from triangulate.warehouse import read_table, replace_table, reporting_currency, table_exists

TRIANGULATION_TABLE = "measurement.triangulation"


class TriangulationConfig(dg.Config):
    mta_model: str = DECISION_MTA_MODEL
    disagreement_factor: float = 2.0  # MTA vs MMM ROAS ratio that flags over/under-crediting


def latest_published_mmm_run(conn) -> str | None:
    from triangulate.warehouse import latest_published_mmm_run as owner  # the one owner

    return owner(conn)


def sources_plot(table, currency: str):
    """MTA vs MMM vs experiment ROAS per channel (the report's plot, drawn from the same
    :func:`~triangulate.report.plots.sources_by_channel` frame), as asset metadata;
    ``table``: ``measurement.triangulation``; ``currency``: the marts'
    (:func:`triangulate.warehouse.reporting_currency`)."""
    from triangulate.report.plots import channel_colors, sources_by_channel, sources_side_by_side

    colors = channel_colors(table["channel"].tolist())
    png = sources_side_by_side(sources_by_channel(table), colors, currency)
    return png_markdown(png, "MTA vs MMM vs experiment")


def decisions_markdown(table) -> str:
    """The decision per channel as a Markdown table: channel, decision and confidence first
    (the UI cuts wide tables on the right), numbers formatted, missing values as a dash."""
    from triangulate.report.format import fmt_fraction_pct, markdown_table

    shown = [
        c
        for c in ("channel", "decision", "confidence", "mmm_mroas", "mmm_mroas_hdi_low",
                  "mmm_mroas_hdi_high", "mta_roas", "experiment_iroas", "flag")
        if c in table
    ]  # fmt: skip
    return markdown_table(table[shown], formats={"confidence": fmt_fraction_pct})


@dg.asset(
    key=table_key(TRIANGULATION_TABLE),
    deps=[
        table_key("measurement.mta_channel_credit"),
        table_key("measurement.mmm_channel_summary"),
        table_key("measurement.mmm_weekly_contributions"),
        table_key("measurement.geo_experiment_results"),
        table_key("marts.fct_weekly_channel_spend"),
        table_key("measurement.budget_plan"),
    ],
    group_name="triangulation",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-science"],
    description="Per channel: MTA ROAS (chosen model, calibrated; not measurable for channels click "
    "tracking cannot see), MMM ROAS and marginal ROAS with HDI (latest published run), experiment iROAS "
    "with its interval, and the budget plan's decision (scale / shift_budget_away / hold / test) with "
    "its reason and confidence: the same decision as measurement.budget_plan, by construction.",
)
def channel_triangulation(
    context: dg.AssetExecutionContext, config: TriangulationConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.get_connection() as conn:
        currency = reporting_currency(conn)
        run_id = latest_published_mmm_run(conn)
        if run_id is None:
            raise dg.Failure("no published MMM run yet: materialize the mix_model assets first")
        experiments = (
            read_table(conn, "measurement.geo_experiment_results")
            if table_exists(conn, "measurement.geo_experiment_results")
            else None
        )
        credit = read_table(conn, "measurement.mta_channel_credit")
        spend = read_table(conn, "marts.fct_weekly_channel_spend")
        factors = warehouse_calibration_factors(conn, config.mta_model, run_id)
        inputs = triangulation_inputs(
            credit,
            spend,
            read_table(conn, "measurement.mmm_channel_summary"),
            experiments,
            mta_model=config.mta_model,
            mmm_run_id=run_id,
            experiment_calibration={
                r.channel: r.calibration_factor
                for r in factors.itertuples()
                if r.factor_source == "experiment"
            },
        )
        plan = conn.execute("select * from measurement.budget_plan where run_id = ?", [run_id]).df()
        if plan.empty:
            raise dg.Failure(
                f"measurement.budget_plan has no rows for the published MMM run {run_id}: "
                "materialize measurement/budget_plan first"
            )
        blind = [c.name for c in load_channels() if not c.click_tracked]
        table = triangulate(
            inputs, plan, not_measurable_by_mta=blind,
            disagreement_factor=config.disagreement_factor,
        )  # fmt: skip
        replace_table(conn, TRIANGULATION_TABLE, table)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "mmm_run_id": run_id,
            "decisions": dg.MetadataValue.md(decisions_markdown(table)),
            "mta_vs_mmm_vs_experiment": sources_plot(table, currency),
        }
    )


EXPERIMENT_PLAN_TABLE = "measurement.experiment_plan"


@dg.asset(
    key=table_key(EXPERIMENT_PLAN_TABLE),
    deps=[table_key("measurement.budget_plan"), table_key("marts.fct_weekly_revenue_panel")],
    group_name="triangulation",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-science"],
    description="The next geo tests: for each channel the budget plan holds as `test` (ranked by budget "
    "at stake x posterior uncertainty), treatment geos, duration, MDE and the smallest detectable iROAS, "
    "designed on marts.fct_weekly_revenue_panel.",
)
def experiment_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from triangulate.geo.experiment_plan import experiment_plan as plan_experiments

    with warehouse.get_connection() as conn:
        run_id = latest_published_mmm_run(conn)
        if run_id is None:
            raise dg.Failure("no published MMM run yet: materialize the mix_model assets first")
        plan = conn.execute("select * from measurement.budget_plan where run_id = ?", [run_id]).df()
        panel = read_table(conn, "marts.fct_weekly_revenue_panel")
    proposals = plan_experiments(plan, panel)
    with warehouse.get_connection() as conn:
        replace_table(conn, EXPERIMENT_PLAN_TABLE, proposals)
    from triangulate.report.format import markdown_table

    shown = ["channel", "priority", "weeks", "mde_pct", "min_detectable_iroas", "treatment_geos"]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(proposals),
            "mmm_run_id": run_id,
            "proposals": dg.MetadataValue.md(
                markdown_table(proposals[shown])
                if len(proposals)
                else "no channel needs a test: the plan can tell every channel apart"
            ),
        }
    )
