"""Attribution entry points: aggregated paths in, credits out; or the warehouse in.

* :func:`attribute_paths`: ChannelAttribution-style aggregated paths (a DataFrame from
  :func:`dagster_project.mta.paths.read_aggregated_paths`) -> credit per model x channel.
* :func:`attribute_from_warehouse`: ``marts.fct_conversion_journeys`` and
  ``marts.fct_touchpoints`` on a DuckDB (or PostgreSQL) connection -> the rows of
  ``measurement.mta_channel_credit`` plus a by-campaign drill-down.

Both run the same SQL (:mod:`dagster_project.mta.sql`) over a journey-touch relation;
Python sees only aggregates. Models:

===================  ===================================================================
first_touch          all credit to the first touch
last_touch           all credit to the last touch
last_non_direct      all credit to the last touch not on the ``direct`` channel
                     (the last touch when the journey is all direct)
linear               1/n per touch (a channel touched twice earns twice)
position_based       40% first, 40% last, 20% shared by the middle; 50/50 for two touches
time_decay           weight 2^(-days before conversion / half_life), normalized per
                     journey (needs touch times: warehouse only)
markov_1..markov_3   exact removal effects of a Markov chain of that order, non-converting
                     journeys as nulls (:mod:`dagster_project.mta.markov`)
shapley              exact Shapley value over distinct channel sets
                     (:mod:`dagster_project.mta.shapley`)
ordered_shapley      Shapley credit broken down by the order in which channels first
                     appear (its own output frame; channel totals equal ``shapley``)
===================  ===================================================================

Journeys (warehouse; ``L`` = ``lookback_days``, default 30). A converting journey is a
row of ``marts.fct_conversion_journeys``; its touches are the person's touchpoints in
``[converted_at - L days, converted_at]`` that come after the person's previous
conversion, so each touch belongs to at most one conversion. The touches that belong to
no conversion form the non-converting journeys (the Markov nulls): a person's leftover
touches in time order, a new journey starting after a silence longer than L days; such a
journey's week is that of its last touch. Full rules:
:func:`dagster_project.mta.sql.journey_touches_from_warehouse_sql`.

Markov orders. Consecutive repeats of a channel collapse before states are built, for
every order (ChannelAttribution does this for order 1); an order-k state is the last k
channels of the collapsed path, shorter at the start of a path.

Revenue. Heuristics and Shapley split each journey's revenue with the same weights as
its conversions. Markov revenue uses revenue removal effects (the chain absorbs money
instead of counts), normalized to total revenue, as ChannelAttribution computes
``total_conversion_value``.

Weeks. Every row of ``measurement.mta_channel_credit`` is the model fitted on that
week's journeys: the journeys that converted in the week (``week_start`` = Monday of the
conversion) and the non-converting journeys whose last touch fell in it. So each week's
credits sum to that week's attributable conversions and revenue, a channel absent from a
week gets nothing that week, and a path-level model (Markov) is not smeared across weeks.

Campaigns. Heuristic credit lands on the touch, so its campaign is exact. Channel-level
models (Markov, Shapley) split a channel's weekly credit across campaigns in proportion
to that channel's linear-touch credit by campaign in the week (revenue by revenue); a
channel with Markov credit but no touch on a converting journey that week (it only
appears on non-converting ones) keeps its credit under campaign NULL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from dagster_project.mta import sql
from dagster_project.mta.markov import markov_credit
from dagster_project.mta.shapley import ordered_shapley_credit, shapley_credit

MARKOV_MODELS = ("markov_1", "markov_2", "markov_3")
PATH_MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    *MARKOV_MODELS,
    "shapley",
)
"""Models that need only the order of channels (what aggregated paths carry)."""
CHANNEL_CREDIT_MODELS = (*PATH_MODELS[:5], "time_decay", *MARKOV_MODELS, "shapley")
"""Every model that writes rows to ``measurement.mta_channel_credit``."""
ALL_MODELS = (*CHANNEL_CREDIT_MODELS, "ordered_shapley")

CHANNEL_CREDIT_COLUMNS = ["model", "week_start", "channel", "conversions", "revenue"]
CAMPAIGN_CREDIT_COLUMNS = ["model", "week_start", "channel", "campaign", "conversions", "revenue"]
ORDERED_SHAPLEY_COLUMNS = ["week_start", "channel", "touch_order", "conversions", "revenue"]

_TOUCH_COLUMNS = (
    "person_key, journey_seq, cast(week_start as date) as week_start, "
    "cast(conversions as double precision) as conversions, cast(revenue as double precision) as revenue, "
    "cast(nulls as double precision) as nulls, position, cast(channel as varchar) as channel, "
    "cast(campaign as varchar) as campaign, cast(age_days as double precision) as age_days"
)


def check_models(models: Iterable[str], allowed: Sequence[str] = ALL_MODELS) -> tuple[str, ...]:
    """The requested model names, validated, in the order given (duplicates dropped)."""
    chosen = tuple(dict.fromkeys(models))
    unknown = [m for m in chosen if m not in allowed]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(allowed)}")
    if not chosen:
        raise ValueError(f"no model chosen; choose from {list(allowed)}")
    return chosen


def attribute_paths(
    paths: pd.DataFrame, models: Iterable[str] = PATH_MODELS, direct_channel: str = "direct"
) -> pd.DataFrame:
    """Credit per model and channel for aggregated paths.

    ``paths``: the canonical frame of :func:`dagster_project.mta.paths.aggregated_paths_frame`
    (``path, conversions, revenue, nulls``). Returns ``model, channel, conversions,
    revenue`` (conversions in conversions, revenue in the paths' money unit), one row per
    model and channel seen in any path. ``time_decay`` needs touch times, which aggregated
    paths do not have: asking for it is an error.
    """
    models = tuple(models)
    if "time_decay" in models:
        raise ValueError(
            "time_decay needs touch times; aggregated paths carry none (use the warehouse tables)"
        )
    chosen = check_models(models, PATH_MODELS)
    with local_path_touches(paths) as (conn, touches):
        campaign_credit, _ = attribute_touches(conn, touches, chosen, direct_channel, 7.0)
    credit = (
        campaign_credit.groupby(["model", "channel"], sort=False)[["conversions", "revenue"]]
        .sum()
        .reset_index()
    )
    channels = {c for path in paths["path"] for c in path.split(sql.PATH_SEPARATOR)}
    return _complete(credit, ["model", "channel"], chosen, channels)


def attribute_from_warehouse(
    conn: Any,
    models: Iterable[str] = CHANNEL_CREDIT_MODELS,
    lookback_days: float = 30,
    half_life_days: float = 7.0,
    direct_channel: str = "direct",
    journeys_table: str = "marts.fct_conversion_journeys",
    touchpoints_table: str = "marts.fct_touchpoints",
) -> dict[str, pd.DataFrame]:
    """Run the models on the warehouse's journeys; heavy aggregation stays in SQL.

    ``lookback_days``: how far before a conversion a touch still belongs to it, and the
    silence that splits non-converting journeys (see
    :func:`dagster_project.mta.sql.journey_touches_from_warehouse_sql`).
    ``half_life_days``: time decay's half-life, in days.

    Returns a dict of DataFrames:

    * ``channel_credit``: ``model, week_start, channel, conversions, revenue``, the rows of
      ``measurement.mta_channel_credit`` (week_start a DATE, Monday of the conversion week);
    * ``campaign_credit``: the same plus ``campaign``, for drill-down;
    * ``conversion_summary``: per week ``conversions, revenue`` in the journeys table,
      ``attributable_conversions, attributable_revenue`` (those with at least one touch,
      which is what every model's credits sum to) and ``non_converting_journeys``;
    * ``ordered_shapley`` (when asked for): ``week_start, channel, touch_order,
      conversions, revenue``.
    """
    chosen = check_models(models)
    with journey_touches(conn, journeys_table, touchpoints_table, lookback_days) as touches:
        _check_channels(conn, touches)
        paths = sql.query_frame(conn, sql.aggregated_paths_sql(touches, by_week=True))
        with local_path_touches(paths) as path_level:
            campaign_credit, ordered = attribute_touches(
                conn, touches, chosen, direct_channel, half_life_days, path_level=path_level
            )
        summary = sql.query_frame(conn, sql.conversion_summary_sql(journeys_table, touches))
    channel_credit = (
        campaign_credit.groupby(["model", "week_start", "channel"], sort=False)[
            ["conversions", "revenue"]
        ]
        .sum()
        .reset_index()
    )
    result = {
        "channel_credit": _sorted(channel_credit[CHANNEL_CREDIT_COLUMNS]),
        "campaign_credit": _sorted(campaign_credit[CAMPAIGN_CREDIT_COLUMNS]),
        "conversion_summary": summary.assign(week_start=_as_date(summary["week_start"])),
    }
    if ordered is not None:
        result["ordered_shapley"] = ordered[ORDERED_SHAPLEY_COLUMNS]
    return result


@contextmanager
def journey_touches(
    conn: Any, journeys_table: str, touchpoints_table: str, lookback_days: float
) -> Iterator[str]:
    """A temporary journey-touch table built from the warehouse, dropped afterwards.

    Yields the table's name. Journey rules: :func:`sql.journey_touches_from_warehouse_sql`.
    """
    touches = f"mta_journey_touches_{uuid.uuid4().hex[:12]}"
    relation = sql.journey_touches_from_warehouse_sql(
        journeys_table, touchpoints_table, lookback_days
    )
    conn.execute(
        f"create temporary table {touches} as select {_TOUCH_COLUMNS} from ({relation}) as r"
    )
    try:
        yield touches
    finally:
        conn.execute(f"drop table if exists {touches}")


def aggregated_paths_from_warehouse(
    conn: Any,
    lookback_days: float = 30,
    by_week: bool = False,
    journeys_table: str = "marts.fct_conversion_journeys",
    touchpoints_table: str = "marts.fct_touchpoints",
) -> pd.DataFrame:
    """The warehouse's journeys as aggregated paths (``[week_start,] path, conversions,
    revenue, nulls``), e.g. to feed :func:`attribute_paths` or ChannelAttribution."""
    with journey_touches(conn, journeys_table, touchpoints_table, lookback_days) as touches:
        paths = sql.query_frame(conn, sql.aggregated_paths_sql(touches, by_week))
    if by_week:
        paths["week_start"] = _as_date(paths["week_start"])
    paths["path"] = paths["path"].astype("str")
    return paths


@contextmanager
def local_path_touches(paths: pd.DataFrame) -> Iterator[tuple[Any, str]]:
    """Aggregated paths (optionally with ``week_start``) as a journey-touch table in a
    private in-memory DuckDB; yields ``(connection, table name)``.

    Path-level models (Markov, Shapley) run here on aggregated data: for the warehouse
    that is the SQL-built path counts by week, a few thousand rows however many journeys.
    """
    import duckdb

    from dagster_project.mta.paths import path_touches

    touches = path_touches(paths)
    if "week_start" not in paths.columns:
        touches["week_start"] = None
    with duckdb.connect() as conn:
        conn.register("path_touches_input", touches)
        conn.execute(
            "create temporary table mta_path_touches as select person_key, journey_seq, "
            "cast(week_start as date) as week_start, conversions, revenue, nulls, position, "
            "cast(channel as varchar) as channel, cast(null as varchar) as campaign, "
            "cast(null as double precision) as age_days from path_touches_input"
        )
        conn.unregister("path_touches_input")
        yield conn, "mta_path_touches"


def _check_channels(conn: Any, touches: str) -> None:
    """Every touch has a channel, and no channel contains the path separator."""
    channels = sql.query_frame(conn, sql.channels_sql(touches))["channel"]
    if channels.isna().any():
        raise ValueError("marts touchpoints: a touch has no channel (channel is NULL)")
    bad = [c for c in channels if ">" in c]
    if bad:
        raise ValueError(f"marts touchpoints: channel names must not contain '>' (found {bad[:5]})")


def attribute_touches(
    conn: Any,
    touches: str,
    models: Sequence[str],
    direct_channel: str,
    half_life_days: float,
    path_level: tuple[Any, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """All chosen models over a journey-touch relation already in ``conn``.

    Heuristics run on ``touches`` (per touch: exact campaigns and ages). Markov and
    Shapley run on ``path_level`` = ``(connection, table)`` holding the same journeys
    aggregated into paths (default: ``touches`` itself). Returns the campaign-level
    credit (``CAMPAIGN_CREDIT_COLUMNS``; channel credit is its sum over campaigns) and
    the ordered-Shapley frame (None unless asked for).
    """
    path_conn, path_table = path_level or (conn, touches)

    heuristics = sql.query_frame(
        conn, sql.heuristic_credit_sql(touches, direct_channel, half_life_days)
    )
    heuristics["week_start"] = _as_date(heuristics["week_start"])
    frames = []
    for model in sql.HEURISTIC_MODELS:
        if model not in models:
            continue
        part = heuristics[["week_start", "channel", "campaign"]].assign(
            model=model,
            conversions=heuristics[f"{model}__conversions"],
            revenue=heuristics[f"{model}__revenue"],
        )
        if model == "time_decay" and part["conversions"].isna().any():
            raise ValueError(
                "time_decay needs touch times (age before conversion); these touches have none"
            )
        frames.append(part)

    linear = heuristics[["week_start", "channel", "campaign"]].assign(
        conversions=heuristics["linear__conversions"], revenue=heuristics["linear__revenue"]
    )
    week_totals = linear.groupby("week_start", dropna=False)[["conversions", "revenue"]].sum()

    channel_level = []
    for model in MARKOV_MODELS:
        if model in models:
            transitions = sql.query_frame(
                path_conn, sql.markov_transitions_sql(path_table, int(model[-1]))
            )
            transitions["week_start"] = _as_date(transitions["week_start"])
            channel_level.append(_markov_by_week(transitions, week_totals).assign(model=model))

    ordered = None
    if "shapley" in models or "ordered_shapley" in models:
        sequences = sql.query_frame(path_conn, sql.channel_sequences_sql(path_table))
        sequences["week_start"] = _as_date(sequences["week_start"])
        if "shapley" in models:
            channel_level.append(shapley_credit(sequences).assign(model="shapley"))
        if "ordered_shapley" in models:
            ordered = ordered_shapley_credit(sequences)

    frames.extend(_split_by_campaign(credit, linear) for credit in channel_level)
    columns = CAMPAIGN_CREDIT_COLUMNS
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns}), ordered
    return pd.concat([f[columns] for f in frames], ignore_index=True), ordered


def _markov_by_week(transitions: pd.DataFrame, week_totals: pd.DataFrame) -> pd.DataFrame:
    """Markov credit per week: the chain of each week's journeys, normalized to its totals."""
    totals = {
        _week_key(week): (float(row.conversions), float(row.revenue))
        for week, row in week_totals.iterrows()
    }
    frames = []
    for week, week_transitions in transitions.groupby("week_start", dropna=False, sort=True):
        if _week_key(week) not in totals:
            continue  # a week with only non-converting journeys: nothing to credit
        conversions, revenue = totals[_week_key(week)]
        credit = markov_credit(week_transitions, conversions, revenue)
        frames.append(
            credit.drop(columns=["removal_effect", "revenue_removal_effect"]).assign(
                week_start=week
            )
        )
    if not frames:
        return pd.DataFrame(columns=["week_start", "channel", "conversions", "revenue"])
    frame = pd.concat(frames, ignore_index=True)
    frame["week_start"] = _as_date(frame["week_start"])
    return frame


def _week_key(week: Any) -> Any:
    """A hashable week key with every kind of missing value as None (aggregated paths have no week)."""
    return None if pd.isna(week) else week


def _split_by_campaign(credit: pd.DataFrame, linear: pd.DataFrame) -> pd.DataFrame:
    """Spread channel-level credit over campaigns by the channel's linear credit mix that week."""
    keys = ["week_start", "channel"]
    mix = linear.copy()
    totals = mix.groupby(keys, dropna=False)[["conversions", "revenue"]].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        mix["conversion_share"] = np.where(
            totals["conversions"] > 0, mix["conversions"] / totals["conversions"], np.nan
        )
        mix["revenue_share"] = np.where(
            totals["revenue"] > 0, mix["revenue"] / totals["revenue"], np.nan
        )
    # where a channel has no revenue (or conversions) that week, fall back to the other mix
    mix["revenue_share"] = mix["revenue_share"].fillna(mix["conversion_share"])
    mix["conversion_share"] = mix["conversion_share"].fillna(mix["revenue_share"])
    mix = mix.dropna(subset=["conversion_share"])[
        [*keys, "campaign", "conversion_share", "revenue_share"]
    ]
    merged = credit.merge(mix, on=keys, how="left")
    unmatched = merged["conversion_share"].isna()
    merged.loc[unmatched, ["conversion_share", "revenue_share"]] = 1.0
    merged["conversions"] = merged["conversions"] * merged["conversion_share"]
    merged["revenue"] = merged["revenue"] * merged["revenue_share"]
    return merged


def _as_date(values: pd.Series) -> pd.Series:
    """A DATE column (Arrow date32, written to DuckDB/Postgres as DATE); NULLs stay NULL."""
    return pd.to_datetime(values).astype(pd.ArrowDtype(pa.date32()))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("model", "week_start", "channel", "campaign") if c in frame.columns]
    order = {m: i for i, m in enumerate(ALL_MODELS)}
    return (
        frame.assign(_model_order=frame["model"].map(order))
        .sort_values(["_model_order", *keys[1:]], na_position="first", kind="stable")
        .drop(columns="_model_order")
        .reset_index(drop=True)
    )


def _complete(
    credit: pd.DataFrame, keys: list[str], models: Sequence[str], channels: Iterable[str]
) -> pd.DataFrame:
    """Every (model, channel) pair present, zero where a model gave a channel nothing."""
    channel_list = sorted(set(channels))
    grid = pd.MultiIndex.from_product([list(models), channel_list], names=keys).to_frame(
        index=False
    )
    grid["channel"] = grid["channel"].astype("str")
    credit = credit.astype({"channel": "str", "model": "str"})
    full = grid.merge(credit, on=keys, how="left").fillna({"conversions": 0.0, "revenue": 0.0})
    return full.reset_index(drop=True)
