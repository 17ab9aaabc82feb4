"""The SQL that turns touches into the aggregates the attribution models need.

Every heavy step runs in the warehouse; Python only reads the small results: one row
per week x channel x campaign (heuristic credit) and one per week x distinct path
(:func:`path_codes_sql`), from which numpy computes the Markov transitions and Shapley
coalitions. :func:`markov_transitions_sql` and :func:`channel_sequences_sql` state the
same aggregates in SQL (the tests hold the numpy engine to them).

Two relations feed the queries:

* the warehouse's journey assignment, ``marts.fct_journey_touches`` (every touch with
  the order whose journey it is in; the dbt model owns the journey windows), from which
  :func:`journey_touches_from_warehouse_sql` builds the journeys;
* aggregated paths in ChannelAttribution's format, loaded as one row per touch by
  :mod:`triangulate.mta.paths`.

Both become one **journey-touch relation** with exactly these columns, one row per touch
of a journey (converting or not):

=============  ======================================================================
person_key     the person (any type); with ``journey_seq`` identifies the journey
journey_seq    integer, unique per journey within a person
week_start     DATE, Monday of the conversion week (non-converting: of the last touch);
               NULL for aggregated paths, which carry no dates
conversions    conversions the journey counts (1 for an order, a path's total for paths)
revenue        money the journey counts (net revenue, reporting currency)
nulls          non-converting journeys the row counts (1 for a null journey)
position       1-based position of the touch in its journey, ordered by time
channel        channel name (must not contain '>', the path separator)
campaign       campaign name, NULL when unknown
age_days       days from the touch to the conversion (fractional), NULL when unknown
=============  ======================================================================

Portability: the queries use only ANSI window functions, ``concat_ws``,
``string_agg(... order by ...)``, ``power``, ``greatest``, ``date_trunc('week', ...)`` and
``extract(epoch from ...)``, ``percentile_disc(array[...]) within group (order by ...)``
and plain comparisons (person buckets, :class:`PersonRange`), all of which PostgreSQL and
DuckDB share (the bucket queries were run on PostgreSQL 15 too). Parameters (lookback,
half-life, the direct channel's name, table names) are validated and inlined, so no
driver-specific placeholder style is needed. How a query result becomes a DataFrame is
:func:`query_frame`'s.

Spark SQL (4.1) runs the same queries: every builder takes ``dialect`` (``duckdb``, the
default, ``postgres`` or ``spark``: the warehouse session's ``engine``;
:func:`dialect_of` reads it from a connection), and a :class:`SqlDialect` spells the few
pieces Spark does not share, so each query keeps one owner:

* ``extract(epoch from ts)``: Spark has no ``epoch`` field; ``cast(unix_micros(ts) as
  double) / 1e6`` is the same double (timestamps read in the session time zone, UTC in
  the project's Spark settings, as DuckDB's zone-less TIMESTAMP);
* ``string_agg(x, sep order by k)``: Spark writes ``string_agg(x, sep) within group
  (order by k)`` (which DuckDB and PostgreSQL refuse for ``string_agg``);
* ``percentile_disc(array[...]) within group (order by person_key)``: Spark's takes one
  numeric fraction of a numeric column, so :func:`person_key_quantiles_sql` finds the same
  keys by position (running counts of the distinct keys), NULL when there is none;
* types in casts: ``double precision`` is ``double`` and ``varchar`` (which needs a length
  in Spark) is ``string``;
* decimal literals: Spark reads ``1.0`` as DECIMAL, so ``1.0 / n`` stays DECIMAL (exact to
  22 digits). Where that is multiplied by a double column it becomes a double again (the
  heuristic weights); where it would be returned (:func:`daily_linear_share_sql`) it is
  cast to double, or the rows would arrive as Python ``Decimal`` s;
* a named window cannot be extended with a frame in Spark (``over (w rows between
  ...)``), so that one window is written out in full, for every engine (DuckDB's plan is
  unchanged);
* temporary tables (:func:`temporary_table_sql`): Spark has none; ``cache table ... as``
  is a temporary view computed once, dropped (and uncached) with ``drop view``.

What needed no change: ``date_trunc('week', ...)`` returns a timestamp in Spark too (the
queries cast it to DATE), Monday-based as in DuckDB; ``/`` never divides two integers
here (Spark's ``/`` is never integer division, PostgreSQL's is); identifiers are plain
(``table_name``), so no quoting; ``is not distinct from``, ``exists`` under ``or``, named
windows, ``with t (a, b) as (values ...)``, ``concat_ws`` skipping NULLs, ``power`` and
``greatest`` are the same. Both of Spark's ANSI modes (the project turns it off, Spark's
default is on) give the same results; ``tests/test_mta_spark.py`` holds every query and
the whole engine on Spark to DuckDB's numbers (1e-9).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pandas as pd

PATH_SEPARATOR = " > "
"""How channels are joined in a path or a Markov state ('A > B'); channels never contain '>'."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


def table_name(name: str, what: str) -> str:
    """``name`` checked as a (schema-qualified) SQL identifier, so it is safe to inline."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what}: {name!r} is not a plain (schema.)table name")
    return name


def sql_text(value: str) -> str:
    """A SQL string literal for ``value`` (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_number(value: float, what: str) -> str:
    """A SQL numeric literal for a finite, positive ``value``."""
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return repr(number)


@dataclass(frozen=True)
class SqlDialect:
    """How one engine spells the few things the queries of this module need and the
    engines do not share (see the module docstring, "Portability"); every other part of a
    query is the same text on every engine. Builders take ``dialect``: an engine's name
    (:data:`DIALECTS`: ``duckdb``, ``postgres``, ``spark``, the seam's ``Session.engine``)
    or one of these."""

    name: str
    double: str = "double precision"
    """The 8-byte float type in a cast (Spark SQL has no ``double precision``: ``double``)."""
    text: str = "varchar"
    """The string type in a cast (Spark's ``varchar`` needs a length: ``string``)."""
    epoch: str = "extract(epoch from {0})"
    """Seconds since 1970 of a timestamp ``{0}``, a double (Spark cannot extract ``epoch``:
    its microseconds, as a double, over 1e6)."""
    string_agg: str = "string_agg({value}, {separator} order by {order})"
    """``{value}`` joined with ``{separator}`` in ``{order}`` (Spark: ``within group``,
    which PostgreSQL and DuckDB do not allow for ``string_agg``)."""
    double_literal: str = "{0}"
    """A decimal literal ``{0}`` that must make a double (Spark reads ``1.0`` as DECIMAL,
    so a sum of ``1.0 / n`` would come back as Python ``Decimal`` s)."""
    temporary_table: str = "create temporary table {name} as {select}"
    """A session-scoped table of a query's rows (Spark: a temporary view, cached at once,
    so the query runs once; Spark has no temporary tables)."""
    drop_temporary_table: str = "drop table if exists {name}"
    """Drops :attr:`temporary_table` (Spark: the view, which uncaches it)."""
    ordered_set_quantiles: bool = True
    """``percentile_disc(array[...]) within group (order by ...)`` works on any ordered
    type (Spark's takes one numeric fraction of a numeric column only:
    :func:`person_key_quantiles_sql` counts positions instead)."""

    def epoch_seconds(self, expression: str) -> str:
        return self.epoch.format(expression)

    def ordered_string_agg(self, value: str, separator: str, order: str) -> str:
        return self.string_agg.format(value=value, separator=separator, order=order)


DIALECTS: dict[str, SqlDialect] = {
    "duckdb": SqlDialect("duckdb"),
    "postgres": SqlDialect("postgres"),
    "spark": SqlDialect(
        "spark",
        double="double",
        text="string",
        epoch="(cast(unix_micros({0}) as double) / 1e6)",
        string_agg="string_agg({value}, {separator}) within group (order by {order})",
        double_literal="cast({0} as double)",
        temporary_table="cache table {name} as {select}",
        drop_temporary_table="drop view if exists {name}",
        ordered_set_quantiles=False,
    ),
}
"""The engines the queries run on, by name. DuckDB and PostgreSQL share every query."""


def sql_dialect(dialect: str | SqlDialect) -> SqlDialect:
    """``dialect`` (a name of :data:`DIALECTS` or a :class:`SqlDialect`) as a
    :class:`SqlDialect`; an unknown name is a ``ValueError``."""
    if isinstance(dialect, SqlDialect):
        return dialect
    if dialect not in DIALECTS:
        raise ValueError(f"SQL dialect must be one of {sorted(DIALECTS)}, got {dialect!r}")
    return DIALECTS[dialect]


def dialect_of(conn: Any) -> SqlDialect:
    """The dialect of a connection: its ``engine`` name when it has one (the warehouse
    seam's ``Session``: ``duckdb`` or ``spark``), else DuckDB's, which PostgreSQL (a bare
    DB-API connection) shares."""
    engine = getattr(conn, "engine", None)
    return sql_dialect(engine) if isinstance(engine, str) else DIALECTS["duckdb"]


def temporary_table_sql(name: str, select: str, dialect: str | SqlDialect = "duckdb") -> str:
    """The statement that keeps ``select``'s rows as the session's temporary table ``name``
    (dropped by :func:`drop_temporary_table_sql`)."""
    d = sql_dialect(dialect)
    return d.temporary_table.format(name=table_name(name, "temporary table"), select=select)


def drop_temporary_table_sql(name: str, dialect: str | SqlDialect = "duckdb") -> str:
    """The statement that drops :func:`temporary_table_sql`'s ``name`` if it exists."""
    d = sql_dialect(dialect)
    return d.drop_temporary_table.format(name=table_name(name, "temporary table"))


def query_frame(conn: Any, sql: str) -> pd.DataFrame:
    """Run ``sql`` and return the result as a DataFrame.

    A warehouse session (:class:`triangulate.warehouse.session.Session`, either engine)
    answers :meth:`~triangulate.warehouse.session.Session.query`; a bare DuckDB connection
    ``.execute(sql).df()``; any other DB-API connection (e.g. psycopg for PostgreSQL) goes
    through a cursor.
    """
    from triangulate.warehouse.session import Session

    if isinstance(conn, Session):
        return conn.query(sql)
    result = conn.execute(sql)
    if hasattr(result, "df"):
        return result.df()
    cursor = result if hasattr(result, "fetchall") else conn.cursor()
    rows = cursor.fetchall()
    return pd.DataFrame(rows, columns=[d[0] for d in cursor.description])


def epoch_seconds(expression: str, dialect: str | SqlDialect = "duckdb") -> str:
    """Seconds since 1970 for a timestamp expression, a double (same text in DuckDB and
    PostgreSQL; :attr:`SqlDialect.epoch`)."""
    return sql_dialect(dialect).epoch_seconds(expression)


def sql_literal(value: Any) -> str:
    """A SQL literal for a value read back from the database (a ``person_key``): integers
    and floats as numbers, anything else (text, UUID, timestamp) as a quoted string, which
    both DuckDB and PostgreSQL coerce to the column's type in a comparison."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"no SQL literal for {value!r}")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"no SQL literal for {value!r}")
        return repr(number)
    return sql_text(str(value))


@dataclass(frozen=True)
class PersonRange:
    """One bucket of people: ``lower <= person_key < upper`` (a missing bound is open).

    Buckets come from :func:`person_key_quantiles_sql`: boundaries in the database's own
    order, so consecutive ranges partition the keys exactly whatever their type
    (comparisons are portable SQL for text, integers and UUIDs alike, with no hash
    function, which DuckDB and PostgreSQL do not share). ``nulls``: this bucket also takes
    the people whose key is NULL (exactly one bucket does), so the NULL "person" stays
    whole, as in one pass.
    """

    lower: Any = None
    upper: Any = None
    nulls: bool = True

    def predicate(self, column: str) -> str:
        """SQL condition on ``column`` (a person key) selecting this bucket's people."""
        bounds = []
        if self.lower is not None:
            bounds.append(f"{column} >= {sql_literal(self.lower)}")
        if self.upper is not None:
            bounds.append(f"{column} < {sql_literal(self.upper)}")
        if not bounds:
            return "true" if self.nulls else f"{column} is not null"
        condition = " and ".join(bounds)
        return f"({condition} or {column} is null)" if self.nulls else f"({condition})"


def person_ranges(boundaries: Sequence[Any]) -> list[PersonRange]:
    """Buckets split at ``boundaries`` (non-decreasing in the database's order, as
    :func:`person_key_quantiles_sql` returns them; repeats dropped): ``len + 1`` ranges
    covering every key once, the first one also holding NULL keys."""
    cuts: list[Any] = []
    for value in boundaries:
        if value is not None and (not cuts or value != cuts[-1]):
            cuts.append(value)
    edges = [None, *cuts, None]
    return [
        PersonRange(lower=lower, upper=upper, nulls=k == 0)
        for k, (lower, upper) in enumerate(pairwise(edges))
    ]


def touch_count_sql(touches_table: str, dialect: str | SqlDialect = "duckdb") -> str:
    """How many touches the journey-touches table holds (sizes the person buckets)."""
    sql_dialect(dialect)  # the same on every engine
    return f"select count(*) as touches from {table_name(touches_table, 'journey touches table')}"


def person_key_quantiles_sql(
    touches_table: str, buckets: int, dialect: str | SqlDialect = "duckdb"
) -> str:
    """The ``person_key`` at each ``k / buckets`` quantile of the touches (k = 0..buckets-1),
    one array, in the database's order: cut there, buckets hold about equal numbers of
    touches. ``percentile_disc(array[...]) within group (order by ...)`` is the same
    ordered-set aggregate in PostgreSQL and DuckDB (DuckDB: 0.05 CPU-s for 2.2M touches
    and 2 fractions, 0.76 for 22M and 12). The k = 0 entry is the smallest key: a cut
    equal to it would leave the first bucket empty, so callers drop such cuts.

    Spark's ``percentile_disc`` takes numeric columns and one fraction only, so there the
    same values are found by position: the key at 1-based position ``max(1, ceil(f * n))``
    of the ``n`` ordered keys (``percentile_disc``'s definition; the fraction a double, as
    DuckDB computes it), from each key's running count of touches (one sort of the
    distinct keys, in one Spark partition, plus a join of ``buckets`` rows). No key: NULL,
    as ``percentile_disc`` gives."""
    touches = table_name(touches_table, "journey touches table")
    if int(buckets) < 2:
        raise ValueError(f"person key quantiles need at least 2 buckets, got {buckets!r}")
    d = sql_dialect(dialect)
    if not d.ordered_set_quantiles:
        values = ", ".join(
            f"({k}, cast({k / int(buckets)!r} as {d.double}))" for k in range(int(buckets))
        )
        return f"""
with fractions (k, fraction) as (values {values}),
keys as (
    select person_key, count(*) as touches
    from {touches}
    where person_key is not null
    group by person_key
),
cumulative as (
    select
        person_key,
        touches,
        sum(touches) over (order by person_key rows between unbounded preceding and current row)
            as through,
        sum(touches) over () as total
    from keys
),
cuts as (
    select f.k, c.person_key
    from fractions as f
    join cumulative as c
        on greatest(1, ceil(f.fraction * c.total)) between c.through - c.touches + 1 and c.through
)
select
    case when count(*) > 0
        then transform(array_sort(collect_list(struct(k, person_key))), cut -> cut.person_key)
    end as boundaries
from cuts
"""
    fractions = ", ".join(repr(k / int(buckets)) for k in range(int(buckets)))
    return f"""
select percentile_disc(array[{fractions}]) within group (order by person_key) as boundaries
from {touches}
where person_key is not null
"""


def journey_touches_from_warehouse_sql(
    journey_touches_table: str,
    lookback_days: float,
    persons: PersonRange | None = None,
    dialect: str | SqlDialect = "duckdb",
) -> str:
    """SELECT producing the journey-touch relation from the warehouse's journey assignment.

    ``journey_touches_table`` (``marts.fct_journey_touches``, dbt) holds every touch once
    with the order whose journey it is in: ``order_seq`` (the person's n-th order),
    ``converted_at`` and ``net_revenue``, NULL for a touch in no order's journey. Which
    touch belongs to which order (lookback, click and view windows, previous order) is
    that dbt model's alone, set by the dbt vars ``journey_lookback_days``,
    ``click_window_days`` and ``view_window_days``; ``marts.fct_conversion_journeys``
    aggregates the same assignment, so MTA and the mart's paths agree touch for touch.
    Definitions (``L`` = ``lookback_days``: the dbt var ``journey_lookback_days``, see
    :func:`triangulate.journeys.journey_lookback_days`):

    * A **converting journey** is an order's touches. ``conversions = 1``,
      ``revenue = net_revenue``, ``age_days = (converted_at - touched_at)`` in days; its
      week is the Monday of ``converted_at``.
    * A **non-converting journey** is built from the touches that belong to no order: a
      person's such touches, in time order, start a new journey whenever the gap since the
      previous one exceeds L days (a person who stays silent for longer than the lookback
      starts afresh). ``nulls = 1``; its week is the Monday of its last touch.
    * Touches within a journey are ordered by ``touched_at``, then ``touch_id``.
    * Touches without a ``person_key`` (fct_touchpoints has none) belong to no order:
      they are one unknown person's non-converting journeys.

    Cost: one sort of the touches (partitioned by person and order, so a converting
    journey's positions come straight out of it, with each person's last unassigned touch
    for the week of a non-converting journey); no join. Only the unassigned touches of
    people with a silence longer than the lookback (found by a hash semi join) are sorted
    again, for the running journey start, and grouped for their journeys' weeks;
    everyone else's unassigned touches are one journey as they stand. Non-converting
    journeys get positive ``journey_seq`` (the rank of their first touch among the
    person's unassigned touches), converting ones ``-order_seq``.

    ``persons``: only the journeys of the people in this range (the table filtered by
    ``person_key``). A journey belongs to one person, so the journey-touch relations of
    ranges that partition the people are the whole relation, cut by person: the sorts and
    hash tables above then work on one bucket at a time.
    """
    touches = table_name(journey_touches_table, "journey touches table")
    lookback_seconds = sql_number(float(lookback_days) * 86400.0, "lookback_days")
    people = "true" if persons is None else persons.predicate("person_key")
    d = sql_dialect(dialect)
    epoch_seconds = d.epoch_seconds
    double = d.double
    return f"""
with ordered_touches as (
    -- one sort: a converting journey's touches in order (position 1..n), and each
    -- person's unassigned touches (order_seq NULL) in order, with the time of the
    -- previous unassigned touch and of the person's last unassigned touch
    select
        person_key,
        order_seq,
        touched_at,
        channel,
        campaign,
        converted_at,
        net_revenue,
        row_number() over journey_touches as position,
        lag(touched_at) over journey_touches as previous_touched_at,
        last_value(touched_at) over (
            partition by person_key, order_seq order by touched_at, touch_id
            rows between unbounded preceding and unbounded following
        ) as last_touched_at
    from {touches}
    where {people}
    window journey_touches as (partition by person_key, order_seq order by touched_at, touch_id)
),
null_ordered as (
    select person_key, position, previous_touched_at, last_touched_at, touched_at, channel, campaign
    from ordered_touches
    where order_seq is null
),
silent_people as (
    -- people with a silence longer than the lookback between two unassigned touches:
    -- only their unassigned touches split into several non-converting journeys
    select distinct person_key
    from null_ordered
    where {epoch_seconds("touched_at")} - {epoch_seconds("previous_touched_at")} > {lookback_seconds}
),
split_touches as (
    -- the silent people's (and the NULL person's) unassigned touches: a journey is
    -- numbered by the rank of its first touch; positions restart at 1
    select
        person_key,
        journey_start as journey_seq,
        position - journey_start + 1 as position,
        touched_at,
        channel,
        campaign
    from (
        select
            *,
            max(
                case
                    when previous_touched_at is null then position
                    when {epoch_seconds("touched_at")} - {epoch_seconds("previous_touched_at")}
                        > {lookback_seconds} then position
                end
            ) over (partition by person_key order by position rows unbounded preceding)
                as journey_start
        from null_ordered as n
        where person_key is null
            or exists (select 1 from silent_people as s where s.person_key = n.person_key)
    ) as starts
),
split_weeks as (
    select person_key, journey_seq, cast(date_trunc('week', max(touched_at)) as date) as week_start
    from split_touches
    group by person_key, journey_seq
)
select
    person_key,
    -order_seq as journey_seq,
    cast(date_trunc('week', converted_at) as date) as week_start,
    cast(1 as {double}) as conversions,
    cast(net_revenue as {double}) as revenue,
    cast(0 as {double}) as nulls,
    position,
    channel,
    campaign,
    ({epoch_seconds("converted_at")} - {epoch_seconds("touched_at")}) / 86400.0 as age_days
from ordered_touches
where order_seq is not null
union all
-- everyone else's unassigned touches are one non-converting journey, numbered 1, as
-- they stand (no second sort); its week is that of the person's last unassigned touch
select
    person_key,
    1 as journey_seq,
    cast(date_trunc('week', last_touched_at) as date) as week_start,
    cast(0 as {double}) as conversions,
    cast(0 as {double}) as revenue,
    cast(1 as {double}) as nulls,
    position,
    channel,
    campaign,
    cast(null as {double}) as age_days
from null_ordered as n
where person_key is not null
    and not exists (select 1 from silent_people as s where s.person_key = n.person_key)
union all
select
    n.person_key,
    n.journey_seq,
    w.week_start,
    cast(0 as {double}) as conversions,
    cast(0 as {double}) as revenue,
    cast(1 as {double}) as nulls,
    n.position,
    n.channel,
    n.campaign,
    cast(null as {double}) as age_days
from split_touches as n
join split_weeks as w
    on w.person_key is not distinct from n.person_key and w.journey_seq = n.journey_seq
"""


def journey_touch_columns(dialect: str | SqlDialect = "duckdb") -> str:
    """The select list that gives a journey-touch relation (an ``r`` of
    :func:`journey_touches_from_warehouse_sql`) exactly the documented columns and types."""
    d = sql_dialect(dialect)
    return (
        "person_key, journey_seq, cast(week_start as date) as week_start, "
        f"cast(conversions as {d.double}) as conversions, cast(revenue as {d.double}) as revenue, "
        f"cast(nulls as {d.double}) as nulls, position, cast(channel as {d.text}) as channel, "
        f"cast(campaign as {d.text}) as campaign, cast(age_days as {d.double}) as age_days"
    )


def conversion_weeks_sql(journeys_table: str, dialect: str | SqlDialect = "duckdb") -> str:
    """Per week (Monday of the conversion): ``conversions`` and ``revenue`` in the journeys
    table, touched or not."""
    journeys = table_name(journeys_table, "journeys table")
    double = sql_dialect(dialect).double
    return f"""
select cast(date_trunc('week', converted_at) as date) as week_start,
       count(*) as conversions,
       sum(cast(net_revenue as {double})) as revenue
from {journeys}
group by cast(date_trunc('week', converted_at) as date)
"""


def attributable_weeks_sql(touches: str, dialect: str | SqlDialect = "duckdb") -> str:
    """Per week of a journey-touch relation: ``attributable_conversions`` and
    ``attributable_revenue`` (converting journeys with at least one touch: what every
    model credits) and ``non_converting_journeys``.

    Conversions without any touch in their journey cannot be credited to a channel;
    :func:`conversion_weeks_sql` counts them, and the difference keeps every model's total
    honest. Counts per journey, so relations cut by person add up.
    """
    sql_dialect(dialect)  # the same on every engine
    return f"""
with touched as (
    select week_start, person_key, journey_seq, max(conversions) as conversions, max(revenue) as revenue
    from {touches}
    where conversions > 0
    group by week_start, person_key, journey_seq
),
touched_weeks as (
    select week_start, sum(conversions) as conversions, sum(revenue) as revenue
    from touched group by week_start
),
null_weeks as (
    select week_start, count(*) as non_converting_journeys
    from (select distinct week_start, person_key, journey_seq from {touches} where nulls > 0) as n
    group by week_start
)
select
    coalesce(t.week_start, n.week_start) as week_start,
    coalesce(t.conversions, 0) as attributable_conversions,
    coalesce(t.revenue, 0) as attributable_revenue,
    coalesce(n.non_converting_journeys, 0) as non_converting_journeys
from touched_weeks as t
full outer join null_weeks as n on n.week_start = t.week_start
"""


def heuristic_credit_sql(
    touches: str,
    direct_channel: str,
    half_life_days: float,
    weights: Mapping[str, str] | None = None,
    dialect: str | SqlDialect = "duckdb",
) -> str:
    """Per week x channel x campaign: each touch model's credited conversions and revenue
    (columns ``<model>__conversions``, ``<model>__revenue``).

    ``weights``: model name -> SQL weight of a touch in a converting journey (default:
    every touch model of :mod:`triangulate.mta.registry` with a ``sql_weight``), an
    expression over ``position`` (1 = first), ``path_length``,
    ``last_non_direct_position`` (the last touch whose channel is not ``direct_channel``;
    NULL when every touch is direct), ``decay`` (``2^(-age_days / half_life_days)``) and
    ``decay_total`` (its sum over the journey).

    A touch's credit is weight x the journey's conversions (and x its revenue). Weights
    sum to 1 per journey, so every model's credit sums to the conversions and revenue of
    the journeys that have touches. Time decay is NULL where touches carry no age.

    The same on every engine (Spark computes a weight such as ``1.0 / path_length`` as a
    DECIMAL, exact to 22 digits; times the double ``conversions`` it is a double again).
    """
    sql_dialect(dialect)
    if weights is None:
        from triangulate.mta import registry

        weights = {
            m.name: m.sql_weight for m in registry.models(registry.WAREHOUSE, registry.TOUCH)
        }
    half_life = sql_number(half_life_days, "half_life_days")
    sums = ",\n    ".join(
        f"sum(({weight}) * conversions) as {model}__conversions,\n    "
        f"sum(({weight}) * revenue) as {model}__revenue"
        for model, weight in weights.items()
    )
    return f"""
with converting as (
    select
        week_start,
        channel,
        campaign,
        conversions,
        revenue,
        position,
        count(*) over journey as path_length,
        max(case when channel <> {sql_text(direct_channel)} then position end) over journey
            as last_non_direct_position,
        power(2.0, -age_days / {half_life}) as decay,
        sum(power(2.0, -age_days / {half_life})) over journey as decay_total
    from {touches}
    where conversions > 0
    window journey as (partition by person_key, journey_seq)
)
select
    week_start,
    channel,
    campaign,
    {sums}
from converting
group by week_start, channel, campaign
"""


def markov_transitions_sql(touches: str, order: int, dialect: str | SqlDialect = "duckdb") -> str:
    """Per week: Markov transition counts of order ``order`` (1 to 3).

    Consecutive repeats of a channel collapse first (``B > B > C`` is ``B > C``), for
    every order, as ChannelAttribution does for order 1. The state after a touch is the
    last ``order`` channels of the collapsed path ('A > B' for order 2), shorter at the
    start of a path (the first state of any path is its first channel).

    Rows: ``from_state`` (NULL = the start), ``to_state`` (NULL = the path ends there),
    ``transitions`` (journeys moving, conversions + nulls), and for the ending rows the
    ``conversions``, ``revenue`` and ``nulls`` that absorb there. Journeys that count neither
    conversions nor nulls add nothing.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"Markov order must be 1, 2 or 3, got {order!r}")
    d = sql_dialect(dialect)
    lags = [f"lag(channel, {lag}) over journey" for lag in range(order - 1, 0, -1)]
    state = f"concat_ws({sql_text(PATH_SEPARATOR)}, {', '.join([*lags, 'channel'])})"
    return f"""
with ordered as (
    select
        person_key, journey_seq, week_start, conversions, revenue, nulls, position, channel,
        lag(channel) over (partition by person_key, journey_seq order by position) as previous_channel
    from {touches}
    where conversions + nulls > 0
),
collapsed as (
    select person_key, journey_seq, week_start, conversions, revenue, nulls, position,
           {state} as state
    from ordered
    where previous_channel is null or previous_channel <> channel
    window journey as (partition by person_key, journey_seq order by position)
),
steps as (
    select
        week_start, conversions, revenue, nulls, state,
        lag(state) over journey as from_state,
        lead(state) over journey as next_state
    from collapsed
    window journey as (partition by person_key, journey_seq order by position)
)
select week_start, from_state, state as to_state,
       sum(conversions + nulls) as transitions,
       cast(0 as {d.double}) as conversions,
       cast(0 as {d.double}) as revenue,
       cast(0 as {d.double}) as nulls
from steps
group by week_start, from_state, state
union all
select week_start, state as from_state, cast(null as {d.text}) as to_state,
       sum(conversions + nulls) as transitions,
       sum(conversions) as conversions,
       sum(revenue) as revenue,
       sum(nulls) as nulls
from steps
where next_state is null
group by week_start, state
"""


def channel_sequences_sql(touches: str, dialect: str | SqlDialect = "duckdb") -> str:
    """Per week: converting journeys grouped by their distinct channels in first-touch order.

    ``channel_sequence`` lists each distinct channel once, ordered by the position of its
    first touch ('C > A > B'). Sorting it gives the channel set (Shapley's coalition);
    the order gives ordered Shapley's positions.
    """
    sequence = sql_dialect(dialect).ordered_string_agg(
        "channel", sql_text(PATH_SEPARATOR), "first_position"
    )
    return f"""
with first_touches as (
    select week_start, person_key, journey_seq, conversions, revenue, channel,
           min(position) as first_position
    from {touches}
    where conversions > 0
    group by week_start, person_key, journey_seq, conversions, revenue, channel
),
journeys as (
    select week_start, conversions, revenue,
           {sequence} as channel_sequence
    from first_touches
    group by week_start, person_key, journey_seq, conversions, revenue
)
select week_start, channel_sequence, sum(conversions) as conversions, sum(revenue) as revenue
from journeys
group by week_start, channel_sequence
"""


PATH_CODE_LIMIT = 2**53
"""Path codes stay below this, so the database's ``power`` (a double) and the BIGINT sums
are exact."""


def path_code_capacity(n_channels: int) -> int:
    """The most touches a path code holds: the largest ``n`` with ``(C + 1)^n <= 2^53``
    for ``C`` channels (16 touches for 8 channels)."""
    base = n_channels + 1
    touches = 0
    while base ** (touches + 1) <= PATH_CODE_LIMIT:
        touches += 1
    return touches


def path_codes_sql(
    touches: str,
    by_week: bool,
    channels: Sequence[str],
    max_touches: int,
    dialect: str | SqlDialect = "duckdb",
) -> str:
    """Journeys of at most ``max_touches`` touches grouped by path code: aggregated paths
    without building a string per journey.

    With channel ``channels[k]`` coded ``k + 1`` and ``B = len(channels) + 1``, a journey's
    path code is ``sum over touches of code(channel) * B^(position - 1)``: the path's
    channels as the digits of a base-``B`` number, first touch least significant, no zero
    digit (so the length is implied). Summing integers per journey is a plain hash
    aggregate, several times cheaper than an ordered ``string_agg`` per journey;
    :func:`triangulate.mta.paths.encode_path_codes` turns the few distinct codes back
    into channels. Needs ``position`` to run 1..n within a journey; ``max_touches`` must
    not exceed :func:`path_code_capacity` (longer journeys: :func:`aggregated_paths_sql`
    with ``longer_than=max_touches``).

    Columns ``[week_start,] path_code, conversions, revenue, nulls``.
    """
    sql_dialect(dialect)  # the same on every engine
    base = len(channels) + 1
    if not 0 < max_touches <= path_code_capacity(len(channels)):
        raise ValueError(
            f"max_touches must be 1..{path_code_capacity(len(channels))} for {len(channels)} channels"
        )
    codes = ", ".join(f"({sql_text(channel)}, {k + 1})" for k, channel in enumerate(channels))
    place_values = " ".join(f"when {p} then {base ** (p - 1)}" for p in range(1, max_touches + 1))
    week = "week_start, " if by_week else ""
    return f"""
with channel_codes (channel, code) as (values {codes}),
journeys as (
    select
        t.week_start,
        sum(cast(k.code as bigint) * (case t.position {place_values} else 0 end)) as path_code,
        max(t.position) as touches,
        max(t.conversions) as conversions,
        max(t.revenue) as revenue,
        max(t.nulls) as nulls
    from {touches} as t
    join channel_codes as k on k.channel = t.channel
    group by t.week_start, t.person_key, t.journey_seq
)
select {week}cast(path_code as bigint) as path_code, sum(conversions) as conversions, sum(revenue) as revenue, sum(nulls) as nulls
from journeys
where touches <= {int(max_touches)}
group by {week}path_code
"""


def aggregated_paths_sql(
    touches: str, by_week: bool, longer_than: int = 0, dialect: str | SqlDialect = "duckdb"
) -> str:
    """Journeys grouped by path: ChannelAttribution's aggregated-path table, from SQL.

    Columns ``[week_start,] path, conversions, revenue, nulls``; ``path`` joins a
    journey's channels in touch order with ' > ' (repeats kept, as in the input).
    ``longer_than``: only journeys with more touches than this (those a path code cannot
    hold, :func:`path_codes_sql`); they are found by a touch at a position beyond it, so
    the ordered ``string_agg`` runs on them alone.
    """
    path = sql_dialect(dialect).ordered_string_agg(
        "t.channel", sql_text(PATH_SEPARATOR), "t.position"
    )
    week = "week_start, " if by_week else ""
    if longer_than > 0:
        source = f"""{touches} as t
    join (select distinct person_key, journey_seq from {touches} where position > {int(longer_than)})
        as l on l.person_key is not distinct from t.person_key and l.journey_seq = t.journey_seq"""
    else:
        source = f"{touches} as t"
    return f"""
with journeys as (
    select t.week_start,
           {path} as path,
           max(t.conversions) as conversions, max(t.revenue) as revenue, max(t.nulls) as nulls
    from {source}
    group by t.week_start, t.person_key, t.journey_seq
)
select {week}path, sum(conversions) as conversions, sum(revenue) as revenue, sum(nulls) as nulls
from journeys
group by {week}path
"""


def channels_sql(touches: str, dialect: str | SqlDialect = "duckdb") -> str:
    """Every distinct channel in the journey-touch relation."""
    sql_dialect(dialect)  # the same on every engine
    return f"select distinct channel from {touches}"


def daily_linear_share_sql(journey_touches_table: str, dialect: str | SqlDialect = "duckdb") -> str:
    """Per week x day x channel x campaign of the conversion: the linear model's credited
    conversions (each converting journey's touches share 1 conversion equally).

    Used to spread a model's weekly campaign credit over the days of the week its
    conversions happened (:func:`triangulate.mta.calibration.daily_credit`), as the path
    models' weekly channel credit is already split across campaigns by linear's shares."""
    touches = table_name(journey_touches_table, "journey touches table")
    one = sql_dialect(dialect).double_literal.format("1.0")
    return f"""
with converting as (
    select
        converted_at,
        channel,
        campaign,
        count(*) over (partition by order_id) as path_length
    from {touches}
    where order_id is not null
)
select
    cast(date_trunc('week', converted_at) as date) as week_start,
    cast(converted_at as date) as date,
    channel,
    campaign,
    sum({one} / path_length) as linear_conversions
from converting
group by 1, 2, 3, 4
"""
