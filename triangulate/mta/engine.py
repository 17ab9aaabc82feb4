"""Attribution entry points: aggregated paths in, credits out; or the warehouse in.

* :func:`attribute_paths`: ChannelAttribution-style aggregated paths (a DataFrame from
  :func:`triangulate.mta.paths.read_aggregated_paths`) -> credit per model x channel.
* :func:`attribute_from_warehouse`: ``marts.fct_journey_touches`` (every touch with the
  order whose journey it is in) and ``marts.fct_conversion_journeys`` on a DuckDB (or
  PostgreSQL) connection -> the rows of ``measurement.mta_channel_credit`` plus a
  by-campaign drill-down.

Where the work happens. The warehouse does everything proportional to the data, in
portable SQL (:mod:`triangulate.mta.sql`): it builds the journeys from the dbt model's
assignment, credits every touch for the heuristics (exact campaigns and ages) and groups
the journeys into aggregated paths by week (as integer path codes). Large tables are
processed in buckets of people (``person_key`` ranges cut at quantiles, about
``TOUCHES_PER_BUCKET`` touches each, :func:`person_buckets`), one SQL pass per bucket,
so the sorts and hash tables stay cache-sized and the cost grows linearly with the
touches; a journey belongs to one person, so the buckets' small results simply add up
(the same result as one pass, to float rounding). Python then works on the distinct
paths only: they are encoded once as integer arrays
(:class:`triangulate.mta.paths.EncodedPaths`) and every path-level model -- the
heuristics for :func:`attribute_paths`, Markov transitions of orders 1-3 with the exact
absorbing-chain solve, Shapley coalitions -- is a few vectorized numpy passes weighted
by the path counts.

Models. Every model is an entry of :mod:`triangulate.mta.registry`, registered by the
module that defines it (``triangulate mta --list-models`` prints them): ``touch`` models
(per-touch weights: first/last touch, last non-direct, linear, position-based in
:mod:`triangulate.mta.heuristics`; time decay, warehouse only) run in SQL on the
warehouse and in numpy on aggregated paths; ``path`` models (Markov orders 1-3 in
:mod:`triangulate.mta.markov`, Shapley and ordered Shapley in
:mod:`triangulate.mta.shapley`) run on the encoded paths. This module dispatches on the
registry only; a new model is one new module.

Journeys (warehouse; ``L`` = the dbt var ``journey_lookback_days``). MTA does not decide
which touch belongs to which order: the dbt model ``marts.fct_journey_touches`` does,
once, for MTA and for the paths of ``marts.fct_conversion_journeys`` alike (the lookback,
click and view windows of the dbt vars, :mod:`triangulate.journeys`). A converting
journey is one order's touches (its week: the conversion's). The touches that belong to
no order form the non-converting journeys (the Markov nulls): a person's leftover
touches in time order, a new journey starting after a silence longer than L days; such a
journey's week is that of its last touch. Full rules:
:func:`triangulate.mta.sql.journey_touches_from_warehouse_sql`.

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

from triangulate.contracts import TABLE_COLUMNS
from triangulate.journeys import journey_lookback_days
from triangulate.mta import registry, sql
from triangulate.mta.heuristics import heuristic_credit
from triangulate.mta.paths import EncodedPaths, decoded_paths, encode_path_codes, encode_paths
from triangulate.mta.registry import PATHS, WAREHOUSE, ModelContext, ModelOptions


def path_models() -> tuple[str, ...]:
    """Models that need only the order of channels (what aggregated paths carry): the
    default of :func:`attribute_paths` and of ``triangulate mta``."""
    return registry.names(PATHS)


def channel_credit_models() -> tuple[str, ...]:
    """Every model that writes rows to ``measurement.mta_channel_credit``: the default of
    :func:`attribute_from_warehouse` (and so of the Dagster asset)."""
    return registry.names(WAREHOUSE, output=registry.CHANNEL_CREDIT)


def all_models() -> tuple[str, ...]:
    """Every model that runs on the warehouse, those with their own output included."""
    return registry.names(WAREHOUSE)


_REGISTRY_NAMES = {
    "PATH_MODELS": path_models,
    "CHANNEL_CREDIT_MODELS": channel_credit_models,
    "ALL_MODELS": all_models,
}


def __getattr__(name: str) -> tuple[str, ...]:
    """``PATH_MODELS``, ``CHANNEL_CREDIT_MODELS``, ``ALL_MODELS``: the registry's names
    when read (the functions above)."""
    if name in _REGISTRY_NAMES:
        return _REGISTRY_NAMES[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CHANNEL_CREDIT_COLUMNS = [*TABLE_COLUMNS["measurement.mta_channel_credit"]]
"""Exactly the contract's columns of ``measurement.mta_channel_credit`` (triangulate.contracts)."""
CAMPAIGN_CREDIT_COLUMNS = ["model", "week_start", "channel", "campaign", "conversions", "revenue"]
ORDERED_SHAPLEY_COLUMNS = ["week_start", "channel", "touch_order", "conversions", "revenue"]
CONVERSION_SUMMARY_COLUMNS = [
    "week_start",
    "conversions",
    "revenue",
    "attributable_conversions",
    "attributable_revenue",
    "non_converting_journeys",
]


def check_models(models: Iterable[str], runs_on: str = WAREHOUSE) -> tuple[str, ...]:
    """The requested model names, validated for ``runs_on`` (``paths`` or ``warehouse``),
    in the order given (duplicates dropped); see :func:`triangulate.mta.registry.check`."""
    return registry.check(models, runs_on)


def attribute_paths(
    paths: pd.DataFrame, models: Iterable[str] | None = None, direct_channel: str = "direct"
) -> pd.DataFrame:
    """Credit per model and channel for aggregated paths.

    ``paths``: the canonical frame of :func:`triangulate.mta.paths.aggregated_paths_frame`
    (``path, conversions, revenue, nulls``). ``models``: default :func:`path_models`.
    Returns ``model, channel, conversions, revenue`` (conversions in conversions, revenue
    in the paths' money unit), one row per model and channel seen in any path.
    ``time_decay`` needs touch times, which aggregated paths do not have: asking for it
    is an error.

    Every model runs in numpy on the paths encoded once (:func:`encode_paths`), so the
    cost follows the number of distinct paths. A ``week_start`` column, when present,
    fits the path-level models per week (as the warehouse does) and sums the weeks.
    """
    chosen = check_models(path_models() if models is None else models, PATHS)
    encoded = encode_paths(paths)
    touch = [m for m in chosen if registry.get(m).kind == registry.TOUCH]
    frames = [heuristic_credit(encoded, touch, direct_channel)]
    channel_level, _ = path_level_credit(encoded, chosen, ModelOptions(direct_channel))
    frames.extend(channel_level)
    credit = (
        pd.concat([f[["model", "channel", "conversions", "revenue"]] for f in frames])
        .groupby(["model", "channel"], sort=False)[["conversions", "revenue"]]
        .sum()
        .reset_index()
    )
    return _complete(credit, ["model", "channel"], chosen, encoded.channels)


TOUCHES_PER_BUCKET = 2_000_000
"""Touches per person bucket when the warehouse builds journeys (see
:func:`person_buckets`). DuckDB's CPU per touch measured flat for 0.5M-2.2M touches per
pass and 12-13% higher for 22M in one pass; at 22M, buckets of 2M beat 1M, 4.4M and 22M
(docs/benchmarks_mta.md)."""


def attribute_from_warehouse(
    conn: Any,
    models: Iterable[str] | None = None,
    lookback_days: float | None = None,
    half_life_days: float = 7.0,
    direct_channel: str = "direct",
    journeys_table: str = "marts.fct_conversion_journeys",
    journey_touches_table: str = "marts.fct_journey_touches",
    buckets: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Run the models on the warehouse's journeys; heavy aggregation stays in SQL.

    The touches and their orders are ``journey_touches_table``'s (the dbt model owns the
    assignment and its windows); ``journeys_table`` gives the conversions per week,
    touched or not. ``lookback_days``: the silence that splits non-converting journeys;
    None (the default) reads the dbt var ``journey_lookback_days``, the lookback the dbt
    model applied (:func:`triangulate.journeys.journey_lookback_days`); pass a value only
    to match a dbt build run with other ``--vars``. ``half_life_days``: time decay's
    half-life, in days. ``buckets``: how many person buckets build the journeys (default:
    from the touch count, :func:`person_buckets`); the result does not depend on it.

    ``models``: default :func:`channel_credit_models`. Returns a dict of DataFrames:

    * ``channel_credit``: ``model, week_start, channel, conversions, revenue``, the rows of
      ``measurement.mta_channel_credit`` (week_start a DATE, Monday of the conversion week);
    * ``campaign_credit``: the same plus ``campaign``, for drill-down;
    * ``conversion_summary``: per week ``conversions, revenue`` in the journeys table,
      ``attributable_conversions, attributable_revenue`` (those with at least one touch,
      which is what every model's credits sum to) and ``non_converting_journeys``;
    * ``ordered_shapley`` (when asked for): ``week_start, channel, touch_order,
      conversions, revenue``; in general, one frame per chosen model whose ``output`` is
      not ``channel_credit``, under that name, ``week_start`` first.

    SQL builds the journeys of one bucket of people at a time and reduces them to
    per-touch heuristic credit by week x channel x campaign, aggregated paths by week and
    per-week counts; those small results add up over the buckets (a journey belongs to
    one person). The path-level models (Markov, Shapley) then run in numpy on the paths.
    """
    chosen = check_models(channel_credit_models() if models is None else models, WAREHOUSE)
    options = ModelOptions(direct_channel=direct_channel, half_life_days=half_life_days)
    # every touch model's weight in one pass (linear is always needed: it splits the
    # path models' credit across campaigns)
    touch_models = registry.models(WAREHOUSE, registry.TOUCH)
    weights = {m.name: m.sql_weight for m in touch_models}
    channels = _check_channels(conn, journey_touches_table)
    dialect = sql.dialect_of(conn)
    heuristic_parts, path_parts, week_parts = [], [], []
    for touches in bucketed_journey_touches(conn, journey_touches_table, lookback_days, buckets):
        heuristic_parts.append(
            sql.query_frame(
                conn,
                sql.heuristic_credit_sql(touches, direct_channel, half_life_days, weights, dialect),
            )
        )
        path_parts.append(journey_path_frames(conn, touches, True, channels))
        week_parts.append(sql.query_frame(conn, sql.attributable_weeks_sql(touches, dialect)))
    heuristics = _sum_by(heuristic_parts, ["week_start", "channel", "campaign"])
    heuristics["week_start"] = _as_date(heuristics["week_start"])
    paths = _encode_path_parts(path_parts, True, channels)
    summary = _conversion_summary(
        sql.query_frame(conn, sql.conversion_weeks_sql(journeys_table, dialect)), week_parts
    )
    frames = []
    for model in touch_models:
        if model.name not in chosen:
            continue
        part = heuristics[["week_start", "channel", "campaign"]].assign(
            model=model.name,
            conversions=heuristics[f"{model.name}__conversions"],
            revenue=heuristics[f"{model.name}__revenue"],
        )
        if part["conversions"].isna().any():
            needs = model.needs or "a weight for every touch"
            raise ValueError(f"{model.name} needs {needs}; these touches have none")
        frames.append(part)
    linear = heuristics[["week_start", "channel", "campaign"]].assign(
        conversions=heuristics["linear__conversions"], revenue=heuristics["linear__revenue"]
    )
    channel_level, outputs = path_level_credit(paths, chosen, options)
    frames.extend(_split_by_campaign(credit, linear) for credit in channel_level)
    if frames:
        campaign_credit = pd.concat([f[CAMPAIGN_CREDIT_COLUMNS] for f in frames], ignore_index=True)
    else:
        campaign_credit = pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in CAMPAIGN_CREDIT_COLUMNS}
        )
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
        "conversion_summary": summary,
    }
    for name, frame in outputs.items():
        result[name] = frame[["week_start", *[c for c in frame.columns if c != "week_start"]]]
    return result


def person_buckets(
    conn: Any, journey_touches_table: str, buckets: int | None = None
) -> list[sql.PersonRange | None]:
    """The person buckets that build the journeys, one SQL pass each.

    Why: building journeys sorts and hashes every touch; once those working sets outgrow
    the CPU caches the cost per touch climbs (DuckDB, 2.2M -> 22M touches in one pass:
    11x the CPU for 10x the touches). Cut by person, each pass stays cache-sized and the
    total grows linearly. ``buckets``: how many (default ``ceil(touches /
    TOUCHES_PER_BUCKET)``, so a table of up to that many touches is one pass with no
    extra query). Returns ``[None]`` (everyone, no filter) for one bucket, otherwise
    :class:`sql.PersonRange` s cut at ``person_key`` quantiles of the touches
    (:func:`sql.person_key_quantiles_sql`); fewer when keys repeat.
    """
    dialect = sql.dialect_of(conn)
    if buckets is None:
        count = sql.touch_count_sql(journey_touches_table, dialect)
        touches = int(sql.query_frame(conn, count).iloc[0, 0])
        buckets = max(1, -(-touches // TOUCHES_PER_BUCKET))
    elif isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise ValueError(f"buckets must be a positive integer, got {buckets!r}")
    if buckets == 1:
        return [None]
    quantiles = sql.query_frame(
        conn, sql.person_key_quantiles_sql(journey_touches_table, buckets, dialect)
    )
    values = quantiles.iloc[0, 0]
    if not isinstance(values, list | tuple | np.ndarray) or len(values) == 0:
        return [None]  # no touch has a person (the aggregate is NULL)
    smallest, *cuts = list(values)
    # a cut at the smallest key would leave the first bucket empty
    return sql.person_ranges([value for value in cuts if value != smallest])


def bucketed_journey_touches(
    conn: Any,
    journey_touches_table: str,
    lookback_days: float | None = None,
    buckets: int | None = None,
) -> Iterator[str]:
    """The journey-touch table of each bucket of people in turn (:func:`person_buckets`,
    :func:`journey_touches`); each is dropped when the caller asks for the next one."""
    if lookback_days is None:
        lookback_days = journey_lookback_days()
    for persons in person_buckets(conn, journey_touches_table, buckets):
        with journey_touches(conn, journey_touches_table, lookback_days, persons) as touches:
            yield touches


@contextmanager
def journey_touches(
    conn: Any,
    journey_touches_table: str,
    lookback_days: float | None = None,
    persons: sql.PersonRange | None = None,
) -> Iterator[str]:
    """A temporary journey-touch table built from the warehouse's journey assignment
    (``marts.fct_journey_touches``), dropped afterwards.

    Yields the table's name. ``lookback_days``: as in :func:`attribute_from_warehouse`.
    ``persons``: only those people's journeys (None: everyone). Journey rules:
    :func:`sql.journey_touches_from_warehouse_sql`.
    """
    if lookback_days is None:
        lookback_days = journey_lookback_days()
    touches = f"mta_journey_touches_{uuid.uuid4().hex[:12]}"
    dialect = sql.dialect_of(conn)
    relation = sql.journey_touches_from_warehouse_sql(
        journey_touches_table, lookback_days, persons, dialect
    )
    select = f"select {sql.journey_touch_columns(dialect)} from ({relation}) as r"
    conn.execute(sql.temporary_table_sql(touches, select, dialect))
    try:
        yield touches
    finally:
        conn.execute(sql.drop_temporary_table_sql(touches, dialect))


def aggregated_paths_from_warehouse(
    conn: Any,
    lookback_days: float | None = None,
    by_week: bool = False,
    journey_touches_table: str = "marts.fct_journey_touches",
    buckets: int | None = None,
) -> pd.DataFrame:
    """The warehouse's journeys as aggregated paths (``[week_start,] path, conversions,
    revenue, nulls``), e.g. to feed :func:`attribute_paths` or ChannelAttribution.
    ``lookback_days``, ``buckets``: as in :func:`attribute_from_warehouse`."""
    channels = _check_channels(conn, journey_touches_table)
    parts = [
        journey_path_frames(conn, touches, by_week, channels)
        for touches in bucketed_journey_touches(conn, journey_touches_table, lookback_days, buckets)
    ]
    encoded = _encode_path_parts(parts, by_week, channels)
    paths = pd.DataFrame({"path": pd.Series(decoded_paths(encoded), dtype="str")})
    if by_week:
        weeks = np.array(encoded.groups, dtype=object)[encoded.group]
        paths.insert(0, "week_start", _as_date(pd.Series(weeks, dtype=object)))
    return paths.assign(
        conversions=encoded.conversions, revenue=encoded.revenue, nulls=encoded.nulls
    )


def journey_paths(
    conn: Any,
    touches: str,
    by_week: bool,
    channels: Sequence[str],
    max_coded_touches: int | None = None,
) -> EncodedPaths:
    """The journeys of a journey-touch table as encoded aggregated paths, grouped in SQL
    (:func:`journey_path_frames`): one table in one call, for tests and notebooks; the
    engine itself adds up :func:`journey_path_frames` over buckets of people."""
    parts = [journey_path_frames(conn, touches, by_week, channels, max_coded_touches)]
    return _encode_path_parts(parts, by_week, channels)


def journey_path_frames(
    conn: Any,
    touches: str,
    by_week: bool,
    channels: Sequence[str],
    max_coded_touches: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The journeys of a journey-touch table as aggregated paths, grouped in SQL.

    Returns ``(codes, longer)``: journeys of up to ``max_coded_touches`` touches (default:
    as many as a 53-bit path code holds, :func:`sql.path_code_capacity`) grouped by path
    code (:func:`sql.path_codes_sql`), longer ones by path string
    (:func:`sql.aggregated_paths_sql`). ``channels``: every channel of the table, sorted.
    With ``by_week`` the paths are grouped per week.
    """
    week = ["week_start"] if by_week else []
    dialect = sql.dialect_of(conn)
    if not channels:  # no touches: no path codes either
        codes = pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in [*week, "path_code", *_PATH_COUNTS]}
        )
        paths = sql.aggregated_paths_sql(touches, by_week, dialect=dialect)
        return codes, sql.query_frame(conn, paths)
    capacity = sql.path_code_capacity(len(channels))
    coded = capacity if max_coded_touches is None else min(max_coded_touches, capacity)
    codes = sql.query_frame(conn, sql.path_codes_sql(touches, by_week, channels, coded, dialect))
    longer = sql.query_frame(
        conn, sql.aggregated_paths_sql(touches, by_week, longer_than=coded, dialect=dialect)
    )
    return codes, longer


_PATH_COUNTS = ["conversions", "revenue", "nulls"]


def _encode_path_parts(
    parts: Sequence[tuple[pd.DataFrame, pd.DataFrame]], by_week: bool, channels: Sequence[str]
) -> EncodedPaths:
    """Encoded paths from the ``(codes, longer)`` frames of :func:`journey_path_frames`
    for buckets of people: the same path (and week) in several buckets adds up."""
    week = ["week_start"] if by_week else []
    codes = _sum_by([p[0] for p in parts], [*week, "path_code"])
    longer = _sum_by([p[1] for p in parts], [*week, "path"])
    return encode_path_codes(codes.astype({"path_code": "int64"}), channels, longer)


def _sum_by(parts: Sequence[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """Rows of ``parts`` with equal ``keys`` summed (NULL keys kept as keys; a sum of only
    NULLs stays NULL, as in SQL), sorted by the keys."""
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return frame.groupby(keys, dropna=False, sort=True).sum(min_count=1).reset_index()


def _conversion_summary(
    conversion_weeks: pd.DataFrame, week_parts: list[pd.DataFrame]
) -> pd.DataFrame:
    """The ``conversion_summary`` frame: every week with a conversion or a non-converting
    journey; attributable counts summed over the person buckets; zeros where none."""
    attributable = _sum_by(week_parts, ["week_start"])
    summary = conversion_weeks.merge(attributable, on="week_start", how="outer")
    summary = summary.fillna(
        {
            "conversions": 0,
            "revenue": 0.0,
            "attributable_conversions": 0.0,
            "attributable_revenue": 0.0,
            "non_converting_journeys": 0,
        }
    ).astype({"conversions": "int64", "non_converting_journeys": "int64"})
    summary = summary.sort_values("week_start", ignore_index=True)
    return summary.assign(week_start=_as_date(summary["week_start"]))[CONVERSION_SUMMARY_COLUMNS]


def _check_channels(conn: Any, journey_touches_table: str) -> list[str]:
    """Every touch has a channel, and no channel contains the path separator; returns the
    channels, sorted. Every touch is in exactly one journey (converting or not), so these
    are the journeys' channels."""
    touches = sql.table_name(journey_touches_table, "journey touches table")
    channels = sql.query_frame(conn, sql.channels_sql(touches, sql.dialect_of(conn)))["channel"]
    if channels.isna().any():
        raise ValueError(f"{touches}: a touch has no channel (channel is NULL)")
    bad = [c for c in channels if ">" in c]
    if bad:
        raise ValueError(f"{touches}: channel names must not contain '>' (found {bad[:5]})")
    return sorted(str(c) for c in channels)


def path_level_credit(
    paths: EncodedPaths, models: Sequence[str], options: ModelOptions | None = None
) -> tuple[list[pd.DataFrame], dict[str, pd.DataFrame]]:
    """Credit of the chosen ``path`` models (Markov, Shapley, ...), fitted per week of
    ``paths``; touch models among ``models`` are skipped.

    Returns a list of frames ``model, week_start, channel, conversions, revenue`` (one per
    chosen model whose output is ``channel_credit``) and a dict output name -> frame for
    the others (e.g. ``ordered_shapley``). ``week_start`` is a DATE, NULL when the paths
    carry no week. The models share one :class:`~triangulate.mta.registry.ModelContext`.
    """
    weeks = _as_date(pd.Series(paths.groups, dtype=object))

    def with_week(frame: pd.DataFrame) -> pd.DataFrame:
        week = weeks.iloc[frame["group"].to_numpy(dtype=np.int64)].reset_index(drop=True)
        return frame.drop(columns="group").reset_index(drop=True).assign(week_start=week)

    context = ModelContext(options or ModelOptions())
    frames, outputs = [], {}
    for model in registry.models(kind=registry.PATH):
        if model.name not in models:
            continue
        credit = with_week(model.credit(paths, context))
        if model.output == registry.CHANNEL_CREDIT:
            frames.append(credit.assign(model=model.name))
        else:
            outputs[model.output] = credit
    return frames, outputs


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
    order = {m: i for i, m in enumerate(registry.names())}
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
