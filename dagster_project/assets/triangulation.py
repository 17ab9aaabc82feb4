"""Triangulation: MTA vs MMM vs experiments per channel, with a decision (group
``triangulation``). The rules live in :mod:`triangulate.triangulation`."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.assets import WAREHOUSE_POOL, png_markdown, table_key
from triangulate.triangulation import triangulate, triangulation_inputs
from triangulate.warehouse import read_table, replace_table, table_exists

TRIANGULATION_TABLE = "measurement.triangulation"


class TriangulationConfig(dg.Config):
    mta_model: str = "markov_1"
    target_roas: float = 1.0
    mta_share: float = 0.7
    disagreement_factor: float = 2.0


def latest_published_mmm_run(conn) -> str | None:
    if not table_exists(conn, "measurement.mmm_diagnostics"):
        return None
    rows = conn.execute(
        "select run_id from measurement.mmm_diagnostics where published order by fitted_at desc limit 1"
    ).fetchall()
    return rows[0][0] if rows else None


def sources_plot(table):
    """MTA vs MMM vs experiment ROAS per channel (the report's plot), as asset metadata."""
    from triangulate.paths import reporting_currency
    from triangulate.report.plots import channel_colors, sources_side_by_side

    colors = channel_colors(table["channel"].tolist())
    return png_markdown(
        sources_side_by_side(table, colors, reporting_currency()), "MTA vs MMM vs experiment"
    )


@dg.asset(
    key=table_key(TRIANGULATION_TABLE),
    deps=[
        table_key("measurement.mta_channel_credit"),
        table_key("measurement.mmm_channel_summary"),
        table_key("measurement.geo_experiment_results"),
        table_key("marts.fct_weekly_channel_spend"),
    ],
    group_name="triangulation",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-science"],
    description="Per channel: MTA ROAS (chosen model), MMM ROAS and marginal ROAS (latest published run), "
    "experiment iROAS where tested, the MTA calibration factor, and a decision (scale / test / shift "
    "budget away / hold) with its reason.",
)
def channel_triangulation(
    context: dg.AssetExecutionContext, config: TriangulationConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    with warehouse.get_connection() as conn:
        run_id = latest_published_mmm_run(conn)
        if run_id is None:
            raise dg.Failure("no published MMM run yet: materialize the mix_model assets first")
        experiments = (
            read_table(conn, "measurement.geo_experiment_results")
            if table_exists(conn, "measurement.geo_experiment_results")
            else None
        )
        inputs = triangulation_inputs(
            read_table(conn, "measurement.mta_channel_credit"),
            read_table(conn, "marts.fct_weekly_channel_spend"),
            read_table(conn, "measurement.mmm_channel_summary"),
            experiments,
            mta_model=config.mta_model,
            mmm_run_id=run_id,
        )
        table = triangulate(
            inputs, target_roas=config.target_roas, mta_share=config.mta_share,
            disagreement_factor=config.disagreement_factor,
        )  # fmt: skip
        replace_table(conn, TRIANGULATION_TABLE, table)
    shown = [
        c
        for c in ("channel", "mta_roas", "mmm_roas", "mmm_mroas", "experiment_iroas", "decision")
        if c in table
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "mmm_run_id": run_id,
            "decisions": dg.MetadataValue.md(table[shown].round(2).to_markdown(index=False)),
            "mta_vs_mmm_vs_experiment": sources_plot(table),
        }
    )
