"""Mix model: the Bayesian MMM and the budget plan (group ``mix_model``).

One fit per run on ``marts.mmm_weekly_input`` (national by default; ``mmm.yaml``), and,
when geo experiments have been analysed, a second fit calibrated with their lift tests
(``add_lift_test_measurements``). Each fit passes a diagnostics gate before its tables
are published in one transaction; a refused fit records its diagnostics row
(``published = false``) and the previous published run stays the one everybody reads.
The warehouse connection is released while sampling.
"""

import json
import os
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from dagster_project.assets import WAREHOUSE_POOL, png_markdown, table_key
from dagster_project.assets.transform import with_gated_upstream
from dagster_project.resources import WarehouseResource
from triangulate.contracts import GEO_MODEL_TABLES, REFRESH_TABLES
from triangulate.paths import artifacts_dir
from triangulate.warehouse import publish_run, read_table, reporting_currency, table_exists

MMM_TABLES = [
    "measurement.mmm_channel_summary",
    "measurement.mmm_weekly_contributions",
    "measurement.mmm_response_curves",
    "measurement.mmm_diagnostics",
]
GEO_SUMMARY_TABLE = GEO_MODEL_TABLES[0]
"""Published with the other MMM tables by the geo model only (``model.hierarchy: geo``)."""
ROAS_CHANGE_TABLE = REFRESH_TABLES[0]
"""Published with the other MMM tables by a run that has a previous published run (issue 25)."""
BUDGET_TABLE = "measurement.budget_plan"
BUDGET_SUMMARY_TABLE = "measurement.budget_plan_summary"
SAMPLING_PROGRESS_EVERY_S = 15.0
"""Least time between two ``sampling: 2,400/12,000 draws (20%), ... ETA ...`` lines."""


class MMMAssetConfig(dg.Config):
    config_path: str = ""  # alternative mmm.yaml; default: $TRIANGULATE_MMM_CONFIG or the project's
    calibrate: bool = True  # also fit a calibrated model when experiment results exist


def mmm_config(path: str = ""):
    from triangulate.mmm import load_config

    chosen = path or os.environ.get("TRIANGULATE_MMM_CONFIG", "")
    return load_config(chosen or None)


def lift_tests_from_experiments(
    conn, channels: list[str], target_metric: str, log=None, *, geo_model: bool = False
) -> pd.DataFrame | None:
    """pymc-marketing lift-test rows from the results that may calibrate the MMM
    (:func:`triangulate.geo.calibration.calibrating_results`: its channels, its target
    metric); the results left out are logged with the reason.

    National model: each test is scaled from its treatment geos to the whole market
    (``x`` = the market's spend per week in the window, the changes divided by the
    treatment geos' share of it). Geo model (``geo_model``): one row per treatment geo on
    that geo's own curve. The rule is :func:`triangulate.geo.calibration.mmm_lift_test_rows`.
    """
    from dagster_project.assets.experiments import experiment_spends, registered_experiments
    from triangulate.geo.calibration import calibrating_results, mmm_lift_test_rows

    if not table_exists(conn, "measurement.geo_experiment_results"):
        return None
    results, skipped = calibrating_results(
        read_table(conn, "measurement.geo_experiment_results"), channels, target_metric
    )
    for line in skipped:
        if log is not None:
            log.warning(line)
    if results.empty:
        return None
    specs = [s for s in registered_experiments(conn) if s.id in set(results["experiment_id"])]
    spends = experiment_spends(conn, specs)
    rows = []
    for _, result in results.iterrows():
        spend = spends.get(result["experiment_id"])
        if spend is None:
            raise ValueError(
                f"measurement.geo_experiment_results: experiment {result['experiment_id']!r} "
                "is no longer in the registry (raw.experiments); re-run geo_experiment_results"
            )
        rows.append(mmm_lift_test_rows(result, spend, geo_model=geo_model))
    return pd.concat(rows, ignore_index=True)


def roas_plot(summary: pd.DataFrame, currency: str):
    """ROAS with its 94% HDI per channel, the report's own plot, as asset metadata;
    ``currency``: the marts' (:func:`triangulate.warehouse.reporting_currency`)."""
    from triangulate.report.plots import channel_colors, roas_with_hdi

    colors = channel_colors(summary["channel"].tolist())
    return png_markdown(roas_with_hdi(summary, colors, currency), "ROAS with 94% HDI")


def _fit_and_publish(
    context,
    warehouse: WarehouseResource,
    weekly: pd.DataFrame,
    config,
    run_id: str,
    lift_tests,
    diagnostics: pd.DataFrame | None = None,
):
    from triangulate.mmm import run_mmm
    from triangulate.mmm.refresh import previous_run
    from triangulate.mmm.run import progress_printer

    # the weekly refresh (issue 25): warm-started from the last published run of the same
    # kind when the model is the same, and compared with it in measurement.mmm_roas_change
    previous = previous_run(diagnostics, run_id) if diagnostics is not None else None

    run = run_mmm(
        weekly,
        config,
        run_id,
        artifacts_dir(),
        lift_tests,
        budget=False,
        source="marts.mmm_weekly_input",
        progress=progress_printer(context.log.info, every_s=SAMPLING_PROGRESS_EVERY_S),
        previous_run_id=previous,
    )
    context.log.info(f"MMM run {run_id}: {run.start}")
    with warehouse.get_connection() as conn:
        if run.gate.passed:
            publish_run(conn, run_id, run.tables)
        else:
            publish_run(conn, run_id, {"measurement.mmm_diagnostics": run.diagnostics})
    retried = "".join(
        f" {a['divergences']} divergences at target_accept {a['target_accept']:.3g}: "
        "sampled again with a higher one."
        if a.get("reason") == "divergences"
        else f" Not converged at {a['draws']} draws (r_hat_max {a['r_hat_max']:.3f}, "
        f"ess_bulk_min {a['ess_bulk_min']:.0f}): sampled again with more."
        for a in run.fitted.convergence_attempts
    )
    sampler = run.fitted.config.sampler
    context.log.info(
        f"MMM run {run_id} ({sampler.draws} draws per chain, target_accept "
        f"{sampler.target_accept:.3g}):{retried} "
        f"gate {'passed' if run.gate.passed else 'FAILED'}: {run.gate.describe()}"
    )
    return run


MMM_INPUTS = [
    *with_gated_upstream("marts.mmm_weekly_input"),
    table_key("measurement.geo_experiment_results"),
]
"""What the MMM reads, plus the gated marts those are built from (their gates stop it too)."""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            table_key(t),
            kinds={"pymc", "duckdb"},
            owners=["team:marketing-science"],
            deps=MMM_INPUTS,
            description=desc,
        )
        for t, desc in zip(
            MMM_TABLES,
            [
                "MMM per run x channel: spend, contribution and ROAS with 94% HDI, marginal ROAS (USD).",
                "MMM per run x week x component (channels, baseline, trend, seasonality, controls), USD.",
                "MMM per run x channel x weekly spend level: steady-state response with 94% HDI, USD.",
                "MMM per run: R-hat, bulk ESS, divergences, in-sample and holdout MAPE, published flag.",
            ],
            strict=True,
        )
    ]
    + [
        dg.AssetSpec(
            table_key(t),
            kinds={"pymc", "duckdb"},
            owners=["team:marketing-science"],
            deps=MMM_INPUTS,
            description=desc,
            skippable=True,  # published only by some runs (see each description)
        )
        for t, desc in (
            (
                GEO_SUMMARY_TABLE,
                "Geo MMM per run x geo x channel: spend, contribution and ROAS with 94% HDI "
                "(USD). Materialized only when mmm.yaml's model.hierarchy is geo.",
            ),
            (
                ROAS_CHANGE_TABLE,
                "MMM per run x channel: ROAS of the previous published run and of this one, "
                "the change with its 94% HDI (the two posteriors' draws as independent) and "
                "whether it is distinguishable from noise. Materialized from the second "
                "published run on.",
            ),
        )
    ],
    group_name="mix_model",
    pool=WAREHOUSE_POOL,
)
def mmm_fit(
    context: dg.AssetExecutionContext, config: MMMAssetConfig, warehouse: WarehouseResource
):
    cfg = mmm_config(config.config_path)
    with warehouse.get_connection() as conn:
        weekly = read_table(conn, "marts.mmm_weekly_input")
        currency = reporting_currency(conn)
        lift_tests = (
            lift_tests_from_experiments(
                conn,
                list(cfg.channels),
                cfg.data.target_column,
                context.log,
                geo_model=cfg.model.hierarchy == "geo",
            )
            if config.calibrate
            else None
        )
        diagnostics = (
            read_table(conn, "measurement.mmm_diagnostics")
            if table_exists(conn, "measurement.mmm_diagnostics")
            else None
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    base_id = f"{stamp}-{context.run_id[:8]}"
    base = _fit_and_publish(context, warehouse, weekly, cfg, base_id, None, diagnostics)
    if not base.gate.passed:
        raise dg.Failure(
            description=f"MMM run {base_id} refused by the diagnostics gate; the previous published run stays. "
            f"{base.gate.describe()} Fix: a larger sampler.max_draws or more tuning in mmm.yaml, or check the input mart.",
            metadata={
                "diagnostics": dg.MetadataValue.md(base.diagnostics.to_markdown(index=False))
            },
        )
    runs = [base]
    if lift_tests is not None and len(lift_tests):
        calibrated = _fit_and_publish(
            context, warehouse, weekly, cfg, f"{base_id}-calibrated", lift_tests, diagnostics
        )
        runs.append(calibrated)
        if not calibrated.gate.passed:
            context.log.warning(
                f"calibrated MMM refused by the gate; the uncalibrated run {base_id} is published"
            )
    latest = runs[-1] if runs[-1].gate.passed else base
    summary = latest.tables["measurement.mmm_channel_summary"]
    shown = ["channel", "spend", "contribution", "roas", "roas_hdi_low", "roas_hdi_high", "mroas"]
    diagnostics = pd.concat([r.diagnostics for r in runs], ignore_index=True)
    for table in MMM_TABLES:
        meta = {"run_id": latest.run_id}
        if table.endswith("channel_summary"):
            meta["roas"] = dg.MetadataValue.md(summary[shown].round(2).to_markdown(index=False))
            meta["roas_plot"] = roas_plot(summary, currency)
        if table.endswith("diagnostics"):
            meta["diagnostics"] = dg.MetadataValue.md(diagnostics.to_markdown(index=False))
            if lift_tests is not None:
                meta["lift_tests"] = dg.MetadataValue.md(
                    lift_tests.round(2).to_markdown(index=False)
                )
        yield dg.MaterializeResult(asset_key=table_key(table), metadata=meta)
    if GEO_SUMMARY_TABLE in latest.tables:
        yield dg.MaterializeResult(
            asset_key=table_key(GEO_SUMMARY_TABLE),
            metadata={"run_id": latest.run_id, "rows": len(latest.tables[GEO_SUMMARY_TABLE])},
        )
    if ROAS_CHANGE_TABLE in latest.tables:
        change = latest.tables[ROAS_CHANGE_TABLE]
        yield dg.MaterializeResult(
            asset_key=table_key(ROAS_CHANGE_TABLE),
            metadata={
                "run_id": latest.run_id,
                "previous_run_id": str(latest.previous_run_id),
                "start": latest.start,
                "roas_change": dg.MetadataValue.md(
                    change[["channel", "roas_previous", "roas", "roas_change", "verdict"]]
                    .round(3)
                    .to_markdown(index=False)
                ),
            },
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            table_key(BUDGET_TABLE),
            kinds={"pymc", "duckdb"},
            owners=["team:marketing-science"],
            deps=[table_key("measurement.mmm_diagnostics")],
            description="The budget plan of the latest published MMM run and every channel's decision, "
            "from one rule on the posterior draws (triangulate.decisions; mmm.yaml budget:): current and "
            "planned spend over the horizon, the decision (scale / shift_budget_away / hold / test) = the "
            "direction of the change, its confidence, marginal ROAS with 94% HDI, plan dates and freshness.",
        ),
        dg.AssetSpec(
            table_key(BUDGET_SUMMARY_TABLE),
            kinds={"pymc", "duckdb"},
            owners=["team:marketing-science"],
            deps=[table_key("measurement.mmm_diagnostics")],
            description="Per run x plan (total: spend more or less overall; reallocate: fixed total): "
            "expected value and revenue change with 94% HDI, value as % of revenue, P(plan beats the "
            "current allocation); `recommended` marks the plan measurement.budget_plan holds.",
        ),
    ],
    group_name="mix_model",
    pool=WAREHOUSE_POOL,
)
def budget_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from dagster_project.assets.triangulation import latest_published_mmm_run
    from triangulate.mmm import load_fitted
    from triangulate.mmm.outputs import budget_plan as plan_budget

    with warehouse.get_connection() as conn:
        run_id = latest_published_mmm_run(conn)
    if run_id is None:
        raise dg.Failure("no published MMM run: materialize measurement/mmm_* first")
    fitted = load_fitted(artifacts_dir() / "mmm" / run_id)
    plan, summary = plan_budget(fitted, run_id)
    with warehouse.get_connection() as conn:
        publish_run(conn, run_id, {BUDGET_TABLE: plan, BUDGET_SUMMARY_TABLE: summary})
    warning = str(plan["staleness_warning"].iloc[0]) if len(plan) else ""
    if warning:
        context.log.warning(f"budget plan {run_id}: {warning}")
    shown = ["channel", "decision", "current_spend", "recommended_spend", "confidence", "mroas"]
    yield dg.MaterializeResult(
        asset_key=table_key(BUDGET_TABLE),
        metadata={
            "run_id": run_id,
            "dagster/row_count": len(plan),
            "plan": dg.MetadataValue.md(plan[shown].round(2).to_markdown(index=False)),
            "plan_period": f"{plan['plan_start'].iloc[0]} .. {plan['plan_end'].iloc[0]}",
            "data_end": str(plan["data_end"].iloc[0]),
            "staleness_warning": warning or "none",
            "model_dir": json.dumps(str(artifacts_dir() / "mmm" / run_id)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=table_key(BUDGET_SUMMARY_TABLE),
        metadata={
            "run_id": run_id,
            "dagster/row_count": len(summary),
            "plans": dg.MetadataValue.md(summary.round(3).to_markdown(index=False)),
        },
    )
