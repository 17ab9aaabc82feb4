{#-
    The MMM's input: one row for every week x geo between the first and the last week with
    spend or revenue, zero-filled (docs/contracts.md §5).

    - net_revenue from fct_weekly_revenue;
    - spend_<channel> for each paid channel of the channel registry (paid_channel_names(),
      var('channel_registry')) from fct_weekly_channel_spend;
    - control_<name> for each control landed (control_names(): the names in
      landing/controls/, in the order they arrived; none is fine): the mean over the week's
      7 days of the daily value. A day's value is the geo's own value, else the national
      value (national values apply to every geo), else, when nothing was landed for that
      day, the last value landed before it (a price or an index holds until it changes; a
      flag must be landed as 0 to end), and before the first value landed, that first value.
      Averaged as decimals and rounded to 10 decimals (control_week_mean(),
      macros/controls.sql) so every rebuild, and every engine, gives the same bits.

    The control columns follow the data, so dbt cannot enforce a contract here: the
    documented columns are checked by their not_null tests, the control columns by the GX
    gate (no null cell) and by the MMM.

    Geos are those of reference_geos; orders in var('unknown_geo') are not in this table.
-#}

-- depends_on: {{ ref('stg_controls__values') }}
{%- set channels = paid_channel_names() %}
{%- set controls = control_names() %}

with geos as (

    select geo from {{ ref('stg_reference__geos') }}

),

revenue as (

    select * from {{ ref('fct_weekly_revenue') }}

),

spend as (

    select * from {{ ref('fct_weekly_channel_spend') }}

),

observed_weeks as (

    select week_start from revenue
    union
    select week_start from spend

),

bounds as (

    select
        min(week_start) as first_week,
        {{ dbt.datediff('min(week_start)', 'max(week_start)', 'day') }} / 7 as n_weeks
    from observed_weeks

),

weeks as (

    select cast({{ dbt.dateadd('day', '7 * n.generated_number', 'b.first_week') }} as date) as week_start
    from ({{ numbers(10000) }}) as n
    cross join bounds as b
    where n.generated_number <= b.n_weeks

),

panel as (

    select w.week_start, g.geo
    from weeks as w
    cross join geos as g

),

spend_pivoted as (

    select
        week_start,
        geo,
        {% for channel in channels -%}
        sum(case when channel = '{{ channel }}' then spend else 0 end) as spend_{{ channel }}{{ ',' if not loop.last }}
        {% endfor %}
    from spend
    group by week_start, geo

),

{%- if controls %}

control_days as (

    -- every day of the panel's weeks, from the first control value if that is earlier
    -- (it carries forward into the panel)
    select cast({{ dbt.dateadd('day', 'n.generated_number', 'b.first_day') }} as date) as date_day
    from ({{ numbers(100000) }}) as n
    cross join (
        select
            first_day,
            {{ dbt.datediff('first_day', 'last_day', 'day') }} as n_days
        from (
            select
                case when c.first_control_day < w.first_week then c.first_control_day else w.first_week end as first_day,
                cast({{ dbt.dateadd('day', '7 * w.n_weeks + 6', 'w.first_week') }} as date) as last_day
            from bounds as w
            cross join (select min(date_day) as first_control_day from {{ ref('stg_controls__values') }}) as c
        ) as ends
    ) as b
    where n.generated_number <= b.n_days

),

landed_controls as (

    -- a geo's own value wins over the national value for the same day and control
    select
        c.date_day,
        g.geo,
        c.control_name,
        c.control_value,
        row_number() over (
            partition by c.date_day, g.geo, c.control_name
            order by case when c.geo is null then 1 else 0 end
        ) as precedence
    from {{ ref('stg_controls__values') }} as c
    inner join geos as g on c.geo is null or c.geo = g.geo

),

daily_controls as (

    -- every day x geo x control, with the value landed for it (null when none) and how many
    -- values were landed up to that day (a run of days shares the value that starts it)
    select
        d.date_day,
        g.geo,
        k.control_name,
        l.control_value,
        count(l.control_value) over (
            partition by g.geo, k.control_name
            order by d.date_day
            rows between unbounded preceding and current row
        ) as values_so_far
    from control_days as d
    cross join geos as g
    cross join (select distinct control_name from {{ ref('stg_controls__values') }}) as k
    left join landed_controls as l
        on l.date_day = d.date_day
        and l.geo = g.geo
        and l.control_name = k.control_name
        and l.precedence = 1

),

filled_controls as (

    -- a day without a value holds the last value before it; days before the first value
    -- take the first value
    select
        date_day,
        geo,
        control_name,
        coalesce(
            max(control_value) over (partition by geo, control_name, values_so_far),
            max(case when values_so_far = 1 then control_value end) over (partition by geo, control_name)
        ) as control_value
    from daily_controls

),

controls_pivoted as (

    select
        {{ week_start('date_day') }} as week_start,
        geo,
        {% for control in controls -%}
        {{ control_week_mean("case when control_name = '" ~ control ~ "' then control_value end") }} as control_{{ control }}{{ ',' if not loop.last }}
        {% endfor %}
    from filled_controls
    where date_day >= (select first_week from bounds)
    group by {{ week_start('date_day') }}, geo

),

{%- endif %}

final as (

    select
        p.week_start,
        cast(p.geo as {{ dbt.type_string() }}) as geo,
        {{ to_money('coalesce(r.net_revenue, 0)') }} as net_revenue,
        {{ to_money('coalesce(r.gross_revenue, 0)') }} as gross_revenue,
        cast(coalesce(r.orders, 0) as bigint) as orders,
        {% for channel in channels -%}
        {{ to_money('coalesce(s.spend_' ~ channel ~ ', 0)') }} as spend_{{ channel }}{{ ',' if not loop.last or controls }}
        {% endfor -%}
        {% for control in controls -%}
        cast(c.control_{{ control }} as {{ triangulate.double_type() }}) as control_{{ control }}{{ ',' if not loop.last }}
        {% endfor %}
    from panel as p
    left join revenue as r on r.week_start = p.week_start and r.geo = p.geo
    left join spend_pivoted as s on s.week_start = p.week_start and s.geo = p.geo
    {%- if controls %}
    left join controls_pivoted as c on c.week_start = p.week_start and c.geo = p.geo
    {%- endif %}

)

select * from final
