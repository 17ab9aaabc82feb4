"""Re-weighted MTA for daily decisions: ``measurement.mta_calibrated_daily``.

Click-based MTA is fast and granular (day x campaign) but biased: it over-credits what
users click last (brand search) and cannot see what they do not click. The causal sources
say how much revenue a channel really drives; MTA says where inside the channel, and when.
So each channel's MTA credit is multiplied by one factor per channel:

* **experiment** (the channel's latest geo test, preferred): the test's iROAS divided by the
  channel's MTA ROAS over the test window (MTA-credited revenue / spend, the weeks the test
  ran). Both are revenue per unit of spend over the same weeks, so the factor carries the
  test's causal return onto the MTA credit: the calibrated credit of the window's spend sums
  to ``iROAS x spend``, the experiment-implied revenue. (The test measured the treated
  geos; like the MMM calibration, the factor assumes geos respond alike per head.)
* **mmm** (otherwise): the published MMM's contribution of the channel over the weeks both
  cover divided by the MTA-credited revenue of those weeks.

Channels click tracking cannot see have no MTA credit and so no rows; a factor is never
negative (a causal estimate of the opposite sign to MTA leaves the channel uncalibrated:
NaN factor, said in ``factor_source``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from triangulate.contracts import TABLE_COLUMNS

CALIBRATED_DAILY_COLUMNS = list(TABLE_COLUMNS["measurement.mta_calibrated_daily"])
DECISION_MTA_MODEL = "markov_1"
"""The MTA model shown beside the decisions and re-weighted for daily use (exact Markov
removal effects: the data-driven model least tied to a position in the path)."""

FACTOR_COLUMNS = [
    "channel",
    "calibration_factor",
    "factor_source",
    "factor_source_id",
    "factor_window_start",
    "factor_window_end",
    "causal_revenue",
    "mta_revenue",
]


def _weeks_of(start: object, end: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Mondays of the first and last week a date window touches."""
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    return first - pd.Timedelta(days=first.weekday()), last - pd.Timedelta(days=last.weekday())


def calibration_factors(
    credit: pd.DataFrame,
    spend: pd.DataFrame,
    mmm_contributions: pd.DataFrame | None = None,
    experiments: pd.DataFrame | None = None,
    *,
    mmm_run_id: str = "",
) -> pd.DataFrame:
    """One factor per channel with its source and window (module docstring).

    ``credit``: one MTA model's ``week_start, channel, revenue``; ``spend``:
    ``week_start, channel, spend``; ``mmm_contributions``: one run's
    ``week_start, component, contribution``; ``experiments``: ``experiment_id, channel,
    method, iroas, start, end`` (the synthetic-control rows of money metrics are used, the
    latest per channel: a count metric's test, ``metric_kind`` count, has no iROAS to carry).
    """
    credit = credit.assign(week_start=pd.to_datetime(credit["week_start"]))
    spend = spend.assign(week_start=pd.to_datetime(spend["week_start"]))
    rows = {}
    if mmm_contributions is not None and len(mmm_contributions):
        contrib = mmm_contributions.assign(
            week_start=pd.to_datetime(mmm_contributions["week_start"])
        )
        for channel, own in credit.groupby("channel"):
            mmm = contrib[contrib["component"] == channel]
            weeks = sorted(set(own["week_start"]) & set(mmm["week_start"]))
            if not weeks:
                continue
            mta = float(own.loc[own["week_start"].isin(weeks), "revenue"].sum())
            causal = float(mmm.loc[mmm["week_start"].isin(weeks), "contribution"].sum())
            rows[channel] = _factor_row(
                channel, causal, mta, "mmm", mmm_run_id, weeks[0], weeks[-1]
            )
    if experiments is not None and len(experiments):
        usable = experiments["method"] == "synthetic_control"
        if "metric_kind" in experiments:
            usable &= experiments["metric_kind"].astype(str) != "count"
        tests = experiments[usable].sort_values("end_date")
        for channel, own_tests in tests.groupby("channel"):
            test = own_tests.iloc[-1]
            first, last = _weeks_of(test["start_date"], test["end_date"])
            in_window = credit["week_start"].between(first, last) & (credit["channel"] == channel)
            window_spend = spend["week_start"].between(first, last) & (spend["channel"] == channel)
            mta_revenue = float(credit.loc[in_window, "revenue"].sum())
            spent = float(spend.loc[window_spend, "spend"].sum())
            if not (np.isfinite(test["iroas"]) and spent > 0):
                continue
            causal = float(test["iroas"]) * spent  # the experiment-implied revenue of that spend
            rows[channel] = _factor_row(
                channel, causal, mta_revenue, "experiment", str(test["experiment_id"]), first, last
            )
    return pd.DataFrame(list(rows.values()), columns=FACTOR_COLUMNS)


def _factor_row(channel, causal, mta, source, source_id, first, last) -> dict:
    factor = causal / mta if mta > 0 and causal >= 0 else float("nan")
    return {
        "channel": channel,
        "calibration_factor": factor,
        "factor_source": source
        if np.isfinite(factor)
        else f"{source} (not usable: MTA {mta:.2f}, causal {causal:.2f})",
        "factor_source_id": source_id,
        "factor_window_start": pd.Timestamp(first).date(),
        "factor_window_end": (pd.Timestamp(last) + pd.Timedelta(days=6)).date(),
        "causal_revenue": causal,
        "mta_revenue": mta,
    }


def daily_credit(campaign_credit: pd.DataFrame, daily_share: pd.DataFrame) -> pd.DataFrame:
    """One model's weekly campaign credit spread over the days of the week its conversions
    happened: ``credit(day) = credit(week) x share(day)``, ``share`` = the linear model's
    credited conversions of that day over the week's (same channel and campaign;
    :func:`triangulate.mta.sql.daily_linear_share_sql`). Sums per week are unchanged; a week
    without shares (it cannot happen for credited conversions) lands on its Monday.

    ``campaign_credit``: ``week_start, channel, campaign, conversions, revenue``."""
    keys = ["week_start", "channel", "campaign"]
    credit = campaign_credit.assign(week_start=pd.to_datetime(campaign_credit["week_start"]))
    share = daily_share.assign(
        week_start=pd.to_datetime(daily_share["week_start"]),
        date=pd.to_datetime(daily_share["date"]),
    )
    share["share"] = share["linear_conversions"] / share.groupby(keys)[
        "linear_conversions"
    ].transform("sum")
    daily = credit.merge(share[[*keys, "date", "share"]], on=keys, how="left")
    unshared = daily["share"].isna()
    daily.loc[unshared, "date"] = daily.loc[unshared, "week_start"]
    daily["share"] = daily["share"].fillna(1.0)
    for measure in ("conversions", "revenue"):
        daily[measure] = daily[measure] * daily["share"]
    return daily[["date", "channel", "campaign", "conversions", "revenue"]]


def calibrated_daily(
    daily_credit: pd.DataFrame,
    factors: pd.DataFrame,
    *,
    mta_model: str,
    run_id: str = "",
    computed_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """``measurement.mta_calibrated_daily``: one MTA model's credit per day x channel x
    campaign, times the channel's factor, with the factor's source, value and window.

    ``daily_credit``: ``date, channel, campaign, conversions, revenue`` of ``mta_model``."""
    computed_at = computed_at if computed_at is not None else pd.Timestamp.now(tz="UTC")
    table = daily_credit.merge(factors.drop(columns=["causal_revenue", "mta_revenue"]),
                               on="channel", how="left")  # fmt: skip
    missing = table["calibration_factor"].isna() & table["factor_source"].isna()
    table.loc[missing, "factor_source"] = "none (no experiment and no MMM for this channel)"
    table["factor_source_id"] = table["factor_source_id"].fillna("")
    table["calibrated_conversions"] = table["conversions"] * table["calibration_factor"]
    table["calibrated_revenue"] = table["revenue"] * table["calibration_factor"]
    table["mta_model"] = mta_model
    table["run_id"] = run_id
    table["computed_at"] = (
        pd.Timestamp(computed_at).tz_localize(None)
        if pd.Timestamp(computed_at).tzinfo
        else pd.Timestamp(computed_at)
    )
    table["date"] = pd.to_datetime(table["date"]).dt.date
    return table.sort_values(["date", "channel", "campaign"], ignore_index=True)[
        CALIBRATED_DAILY_COLUMNS
    ]


def warehouse_calibration_factors(conn, mta_model: str, run_id: str | None) -> pd.DataFrame:
    """:func:`calibration_factors` on the warehouse: ``mta_model``'s weekly credit
    (``measurement.mta_channel_credit``), ``marts.fct_weekly_channel_spend``, the MMM run
    ``run_id``'s weekly contributions and ``measurement.geo_experiment_results`` (each
    optional: a table not built yet contributes nothing)."""
    from triangulate.warehouse import read_table, table_exists

    credit = conn.execute(
        "select week_start, channel, revenue from measurement.mta_channel_credit where model = ?",
        [mta_model],
    ).df()
    spend = conn.execute(
        "select week_start, channel, sum(spend) as spend from marts.fct_weekly_channel_spend "
        "group by week_start, channel"
    ).df()
    contributions = None
    if run_id and table_exists(conn, "measurement.mmm_weekly_contributions"):
        contributions = conn.execute(
            "select week_start, component, contribution "
            "from measurement.mmm_weekly_contributions where run_id = ?",
            [run_id],
        ).df()
    experiments = (
        read_table(conn, "measurement.geo_experiment_results")
        if table_exists(conn, "measurement.geo_experiment_results")
        else None
    )
    return calibration_factors(credit, spend, contributions, experiments, mmm_run_id=run_id or "")
