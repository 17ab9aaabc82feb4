"""``triangulate mmm fit``: the MMM on any wide weekly table (bring your own data).

pymc and pandas are imported inside the command so ``triangulate --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

mmm_app = typer.Typer(help="Bayesian media mix model.", no_args_is_help=True)


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@mmm_app.command()
def fit(
    weekly: Path = typer.Option(
        ..., "--weekly", exists=True, dir_okay=False, help="Wide weekly CSV: one row per week."
    ),
    date_column: str = typer.Option(..., "--date-column", help="Week start column."),
    target_column: str = typer.Option(
        ..., "--target-column", help="Revenue (or other target) column, money."
    ),
    channels: str = typer.Option(
        ...,
        "--channels",
        help="Comma-separated spend columns (or channel names with spend_<name> columns).",
    ),
    controls: str = typer.Option("", "--controls", help="Comma-separated control columns."),
    config: Path | None = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        help="MMM YAML config (default: the project's mmm.yaml).",
    ),
    out: Path = typer.Option(
        Path("mmm_out"), "--out", help="Directory for the output CSV files and the saved model."
    ),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Run id (default: mmm-<UTC timestamp>)."
    ),
    no_budget: bool = typer.Option(False, "--no-budget", help="Skip the budget optimizer."),
) -> None:
    """Fit an MMM on any wide weekly table; write the output tables as CSV under --out."""
    import logging

    import pandas as pd

    from triangulate.mmm.config import ConfigError, load_config
    from triangulate.mmm.run import run_mmm

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = load_config(
            config,
            channels=_names(channels),
            controls=_names(controls),
            data={"date_column": date_column, "target_column": target_column},
            model={"hierarchy": "national"},
        )
        frame = pd.read_csv(weekly)
        run_id = run_id or "mmm-" + pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
        run = run_mmm(
            frame, cfg, run_id, artifacts_dir=out, budget=not no_budget, source=str(weekly)
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    out.mkdir(parents=True, exist_ok=True)
    run.diagnostics.to_csv(out / "mmm_diagnostics.csv", index=False)
    if run.fitted.prior_predictive is not None:
        run.fitted.prior_predictive.to_csv(out / "prior_predictive.csv", index=False)
    typer.echo(run.gate.describe())
    if not run.gate.passed:
        typer.echo(f"gate failed: only {out / 'mmm_diagnostics.csv'} written", err=True)
        raise typer.Exit(code=1)
    for qualified, table in run.tables.items():
        table.to_csv(out / f"{qualified.split('.', 1)[1]}.csv", index=False)
    summary = run.tables["measurement.mmm_channel_summary"]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.2f}".format
    ):
        typer.echo(summary.drop(columns=["run_id"]).to_string(index=False))
    typer.echo(f"wrote {len(run.tables)} tables to {out}; model saved in {run.model_dir}")
