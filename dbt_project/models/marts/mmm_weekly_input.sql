{{ config(contract={'enforced': true}) }}

{#-
    The MMM's input: one row for every week x geo between the first and the last week with
    spend or revenue, zero-filled (docs/contracts.md §5).

    - net_revenue from fct_weekly_revenue;
    - spend_<channel> for each paid channel of the channel registry (paid_channel_names(),
      var('channel_registry')) from fct_weekly_channel_spend;
    - control_<name> for each name in var('mmm_controls'): the mean over the week's days of
      the daily value, a geo's own value taking precedence over the national value (national
      values apply to every geo); averaged as decimals so every rebuild gives the same bits.

    Geos are those of reference_geos; orders in var('unknown_geo') are not in this table.
-#}

{%- set channels = paid_channel_names() %}
{%- set controls = var('mmm_controls') %}

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

daily_controls as (

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

controls_pivoted as (

    select
        {{ week_start('date_day') }} as week_start,
        geo,
        {% for control in controls -%}
        avg(case when control_name = '{{ control }}' then cast(control_value as numeric(28, 10)) end) as control_{{ control }}{{ ',' if not loop.last }}
        {% endfor %}
    from daily_controls
    where precedence = 1
    group by {{ week_start('date_day') }}, geo

),

final as (

    select
        p.week_start,
        cast(p.geo as {{ dbt.type_string() }}) as geo,
        {{ to_money('coalesce(r.net_revenue, 0)') }} as net_revenue,
        {{ to_money('coalesce(r.gross_revenue, 0)') }} as gross_revenue,
        cast(coalesce(r.orders, 0) as bigint) as orders,
        {% for channel in channels -%}
        {{ to_money('coalesce(s.spend_' ~ channel ~ ', 0)') }} as spend_{{ channel }},
        {% endfor -%}
        {% for control in controls -%}
        cast(c.control_{{ control }} as double precision) as control_{{ control }}{{ ',' if not loop.last }}
        {% endfor %}
    from panel as p
    left join revenue as r on r.week_start = p.week_start and r.geo = p.geo
    left join spend_pivoted as s on s.week_start = p.week_start and s.geo = p.geo
    left join controls_pivoted as c on c.week_start = p.week_start and c.geo = p.geo

)

select * from final
