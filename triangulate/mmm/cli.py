"""``triangulate mmm fit``: the MMM on any weekly table (bring your own data).

A wide table (one row per week) fits the national model; a long one (one row per week x
geo) fits the geo-hierarchical model with ``--geo-column`` (or ``model.hierarchy: geo`` in
``--config``), or is summed to national with one printed line saying so. Text controls
(event names) are one-hot encoded with ``--categorical``. A KPI that is not money
(``--kpi conversions``) is reported as conversions and cost per conversion.

pymc and pandas are imported inside the command so ``triangulate --help`` stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import pandas as pd

mmm_app = typer.Typer(help="Bayesian media mix model.", no_args_is_help=True)

KPIS = ("revenue", "conversions")


class UsageError(ValueError):
    """A mistake in the command line or the table; printed as one line, exit code 2."""


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _slug(value: object) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", str(value)).strip("_").lower() or "blank"


def _is_text(series: pd.Series) -> bool:
    """A column with values that are not numbers (event names, yes/no labels)."""
    import pandas as pd

    present = series.dropna()
    return bool(len(present)) and pd.to_numeric(present, errors="coerce").isna().any()


def one_hot_controls(
    frame: pd.DataFrame, controls: list[str], categorical: list[str]
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One-hot encode the ``categorical`` controls; refuse a text control not named there.

    Each categorical column becomes one 0/1 column per level but its most frequent one
    (the baseline, folded into the intercept; a missing value is the level ``missing``),
    named ``<column>_<level>``. Returns the frame, the control list with each categorical
    replaced by its level columns, and one line per encoded column for the user.
    """

    from triangulate.mmm.config import control_column

    columns = list(frame.columns)
    wanted = controls + [c for c in categorical if c not in controls]
    names, notes = [], []
    for name in wanted:
        column = control_column(name, columns)
        if column is None:
            raise UsageError(f"control {name!r} is not a column; columns are {columns}")
        if name not in categorical:
            if _is_text(frame[column]):
                raise UsageError(f"column {column!r} is categorical: use --categorical {name}")
            names.append(name)
            continue
        labels = frame[column].astype("string").fillna("missing")
        counts = labels.value_counts(sort=True)
        if len(counts) < 2:
            raise UsageError(f"categorical control {column!r} has a single value: drop it")
        baseline = counts.index[0]
        added = []
        for level in counts.index[1:]:
            dummy = f"{name}_{_slug(level)}"
            if dummy in frame.columns or dummy in added:
                raise UsageError(f"categorical control {column!r}: column {dummy!r} clashes")
            frame[dummy] = (labels == level).astype(float).to_numpy()
            added.append(dummy)
        frame = frame.drop(columns=[column])
        names.extend(added)
        notes.append(f"one-hot {column!r}: {len(added)} column(s) {added}, baseline {baseline!r}")
    return frame, names, notes


def _window(frame: pd.DataFrame, date_column: str, start: str | None, end: str | None):
    import pandas as pd

    if date_column not in frame.columns:
        raise UsageError(f"column {date_column!r} is missing; columns are {list(frame.columns)}")
    if start is None and end is None:
        return frame
    dates = pd.to_datetime(frame[date_column], errors="coerce")
    bounds = {}
    for flag, text in (("--start", start), ("--end", end)):
        if text is not None:
            try:
                bounds[flag] = pd.Timestamp(text)
            except ValueError:
                raise UsageError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from None
    keep = dates.notna()
    if "--start" in bounds:
        keep &= dates >= bounds["--start"]
    if "--end" in bounds:
        keep &= dates <= bounds["--end"]
    if not keep.any():
        raise UsageError(
            f"no week between {start or 'the start'} and {end or 'the end'}; the table has "
            f"{dates.min().date()} to {dates.max().date()}"
        )
    return frame.loc[keep].reset_index(drop=True)


def _geo_note(frame: pd.DataFrame, date_column: str, used: set[str]) -> str | None:
    """The line printed when a long table is summed to national (never silently)."""
    rows = frame.groupby(date_column).size()
    if rows.max() <= 1:
        return None
    guesses = [c for c in frame.columns if c not in used and _is_text(frame[c])]
    hint = guesses[0] if len(guesses) == 1 else "COLUMN"
    return f"summed {int(rows.max())} geos to national; use --geo-column {hint} for the geo model"


def _printed_summary(
    summary: pd.DataFrame, kpi: str, value: float | None, hdi: str
) -> pd.DataFrame:
    """The channel summary as printed: money as revenue/ROAS, a count as conversions/CPA
    (cost per conversion; its interval is spend over the conversions' interval). ``hdi``
    labels every interval (``"94% HDI"``)."""
    import pandas as pd

    if kpi == "revenue":
        return pd.DataFrame(
            {
                "channel": summary["channel"],
                "spend": summary["spend"],
                "revenue": summary["contribution"],
                f"revenue {hdi} low": summary["contribution_hdi_low"],
                f"revenue {hdi} high": summary["contribution_hdi_high"],
                "roas": summary["roas"],
                f"roas {hdi} low": summary["roas_hdi_low"],
                f"roas {hdi} high": summary["roas_hdi_high"],
                "marginal_roas": summary["mroas"],
            }
        )
    spend, share = summary["spend"], hdi.split()[0]
    printed = pd.DataFrame(
        {
            "channel": summary["channel"],
            "spend": spend,
            "conversions": summary["contribution"],
            f"conversions {hdi} low": summary["contribution_hdi_low"],
            f"conversions {hdi} high": summary["contribution_hdi_high"],
            "cpa": spend / summary["contribution"],
            f"cpa {share} low": spend / summary["contribution_hdi_high"],
            f"cpa {share} high": spend / summary["contribution_hdi_low"],
            "marginal_cpa": 1 / summary["mroas"],
        }
    )
    if value is not None:
        printed["value"] = summary["contribution"] * value
        printed["roas_at_value"] = summary["roas"] * value
    return printed.replace([float("inf"), float("-inf")], float("nan"))


@mmm_app.command()
def fit(
    weekly: Path = typer.Option(
        ...,
        "--weekly",
        exists=True,
        dir_okay=False,
        help="Weekly CSV: one row per week, or per week x geo with --geo-column.",
    ),
    date_column: str = typer.Option(..., "--date-column", help="Week start column."),
    target_column: str = typer.Option(
        ..., "--target-column", help="The KPI column: revenue (money) or conversions (--kpi)."
    ),
    channels: str = typer.Option(
        ...,
        "--channels",
        help="Comma-separated spend columns (or channel names with spend_<name> columns).",
    ),
    controls: str = typer.Option("", "--controls", help="Comma-separated control columns."),
    categorical: str = typer.Option(
        "",
        "--categorical",
        help="Comma-separated text controls (event names, labels) to one-hot encode: one "
        "0/1 column per level but the most frequent one.",
    ),
    start: str | None = typer.Option(
        None, "--start", help="First week to model, YYYY-MM-DD (inclusive; default: the first)."
    ),
    end: str | None = typer.Option(
        None, "--end", help="Last week to model, YYYY-MM-DD (inclusive; default: the last)."
    ),
    kpi: str = typer.Option(
        "revenue",
        "--kpi",
        help="revenue (money: contribution and ROAS) or conversions (a count: conversions "
        "and cost per conversion).",
    ),
    value_per_conversion: float | None = typer.Option(
        None,
        "--value-per-conversion",
        help="With --kpi conversions: money per conversion, for value, ROAS and the budget plan.",
    ),
    geo_column: str | None = typer.Option(
        None,
        "--geo-column",
        help="Geo column of a long table (one row per week x geo): fit the geo-hierarchical "
        "model. Without it a long table is summed to national, and the command says so.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        help="MMM YAML config (default: the project's mmm.yaml); model.hierarchy: geo is kept.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Directory for the output CSV files and the saved model "
        "(default: $TRIANGULATE_HOME/artifacts/mmm_fit/<run id>).",
    ),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Run id (default: mmm-<UTC timestamp>)."
    ),
    no_budget: bool = typer.Option(False, "--no-budget", help="Skip the budget optimizer."),
    no_save_model: bool = typer.Option(
        False, "--no-save-model", help="Do not save the fitted model (model.nc, ~100 MB)."
    ),
) -> None:
    """Fit an MMM on any weekly table; write the output tables as CSV under --out."""
    import dataclasses
    import logging

    import pandas as pd

    from triangulate.mmm import outputs
    from triangulate.mmm.config import load_config
    from triangulate.mmm.run import progress_printer, run_mmm
    from triangulate.paths import artifacts_dir

    hdi = f"{outputs.HDI_PROB:.0%} HDI"
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_id = run_id or "mmm-" + pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
    out = out or artifacts_dir() / "mmm_fit" / run_id
    budget = not no_budget
    try:
        if kpi not in KPIS:
            raise UsageError(f"--kpi {kpi!r}: expected one of {', '.join(KPIS)}")
        if value_per_conversion is not None:
            if kpi != "conversions":
                raise UsageError("--value-per-conversion needs --kpi conversions")
            if not value_per_conversion > 0:
                raise UsageError(f"--value-per-conversion must be > 0, got {value_per_conversion}")
        data_overrides = {"date_column": date_column, "target_column": target_column}
        if geo_column:
            data_overrides["geo_column"] = geo_column
        overrides = {"model": {"hierarchy": "geo"}} if geo_column else {}
        try:
            frame = pd.read_csv(weekly)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise UsageError(f"{weekly}: not a readable CSV: {exc}") from None
        frame = _window(frame, date_column, start, end)
        frame, control_names, notes = one_hot_controls(frame, _names(controls), _names(categorical))
        cfg = load_config(
            config,
            channels=_names(channels),
            controls=control_names,
            data=data_overrides,
            **overrides,
        )
        if kpi == "conversions":
            if value_per_conversion is None:
                if budget:
                    notes.append(
                        "budget plan skipped: it weighs money against money; pass "
                        "--value-per-conversion to plan on conversions"
                    )
                budget = False
            else:  # break-even in conversions per unit of spend
                cfg = dataclasses.replace(
                    cfg,
                    budget=dataclasses.replace(
                        cfg.budget, target_roas=cfg.budget.target_roas / value_per_conversion
                    ),
                )
        if cfg.model.hierarchy == "geo":
            geo = cfg.data.geo_column
            if geo not in frame.columns:
                where = "--geo-column" if geo_column else "model.hierarchy: geo in --config"
                raise UsageError(
                    f"{where} needs a geo column: {geo!r} is missing; columns are "
                    f"{list(frame.columns)} (use --geo-column NAME)"
                )
            notes.append(
                f"geo model: {frame[geo].nunique()} geos (column {geo!r}), "
                f"{frame[date_column].nunique()} weeks"
            )
        else:
            used = {date_column, target_column, *_names(channels), *control_names}
            if note := _geo_note(frame, date_column, used):
                notes.append(note)
        for note in notes:
            typer.echo(note)
        run = run_mmm(
            frame,
            cfg,
            run_id,
            artifacts_dir=None if no_save_model else out,
            budget=budget,
            source=str(weekly),
            progress=progress_printer(lambda line: typer.echo(line, err=True)),
        )
    except ValueError as exc:  # ConfigError, UsageError, a window too short for the holdout
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    out.mkdir(parents=True, exist_ok=True)
    run.diagnostics.to_csv(out / "mmm_diagnostics.csv", index=False)
    if run.fitted.prior_predictive is not None:
        run.fitted.prior_predictive.to_csv(out / "prior_predictive.csv", index=False)
    for attempt in run.fitted.convergence_attempts:
        typer.echo(
            f"sampled again ({attempt['reason']}): {attempt['draws']} draws, target_accept "
            f"{attempt['target_accept']:.3g} gave r_hat_max {attempt['r_hat_max']:.3f}, "
            f"ess_bulk_min {attempt['ess_bulk_min']:.0f}, divergences {attempt['divergences']}"
        )
    typer.echo(run.gate.describe())
    if not run.gate.passed:
        typer.echo(f"gate failed: only {out / 'mmm_diagnostics.csv'} written", err=True)
        raise typer.Exit(code=1)
    for qualified, table in run.tables.items():
        table.to_csv(out / f"{qualified.split('.', 1)[1]}.csv", index=False)
    summary = run.tables["measurement.mmm_channel_summary"]
    unit = "conversions" if kpi == "conversions" else "revenue"
    cpa = "; cpa's interval: spend over the conversions' HDI" if kpi == "conversions" else ""
    typer.echo(
        f"per channel over the fit period ({unit}; intervals are {hdi}s, highest-density "
        f"intervals of the posterior{cpa}):"
    )
    with pd.option_context(
        "display.width", 250, "display.max_columns", 20, "display.float_format", "{:,.2f}".format
    ):
        typer.echo(_printed_summary(summary, kpi, value_per_conversion, hdi).to_string(index=False))
    saved = f"model saved in {run.model_dir}" if run.model_dir else "model not saved"
    typer.echo(f"wrote {len(run.tables)} tables to {out}; {saved}")
