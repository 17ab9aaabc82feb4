{{ config(contract={'enforced': true}) }}

{#-
    One row per conversion of a tracked person with the touches that led to it
    (docs/contracts.md §5). A touch belongs to an order's journey when it is the person's, at or
    before the order, after the person's previous order, and inside its window:

        visit: touched_at >= converted_at - var('journey_lookback_days') days
        click: touched_at >= converted_at - min(lookback, var('click_window_days')) days
        view:  touched_at >= converted_at - min(lookback, var('view_window_days')) days

    path is the touches' channels in time order joined with ' > ' (ChannelAttribution's
    format). Orders of tracked persons with no touch in the window are left out; untracked
    orders (no Order Completed event, no identified email) are in fct_orders only.
-#}

{%- set lookback = var('journey_lookback_days') | int %}
{%- set click_window = [lookback, var('click_window_days') | int] | min %}
{%- set view_window = [lookback, var('view_window_days') | int] | min %}

with orders as (

    select
        order_id,
        person_key,
        ordered_at as converted_at,
        net_revenue,
        lag(ordered_at) over (partition by person_key order by ordered_at, order_id) as previous_converted_at
    from {{ ref('fct_orders') }}
    where person_key is not null

),

touches as (

    select * from {{ ref('fct_touchpoints') }}

),

journey_touches as (

    select
        o.order_id,
        t.touch_id,
        t.touched_at,
        t.channel,
        t.touch_type
    from orders as o
    inner join touches as t
        on t.person_key = o.person_key
        and t.touched_at <= o.converted_at
        and (o.previous_converted_at is null or t.touched_at > o.previous_converted_at)
        and t.touched_at >= {{ dbt.dateadd('day', -lookback, 'o.converted_at') }}
    where (t.touch_type <> 'click' or t.touched_at >= {{ dbt.dateadd('day', -click_window, 'o.converted_at') }})
        and (t.touch_type <> 'view' or t.touched_at >= {{ dbt.dateadd('day', -view_window, 'o.converted_at') }})

),

paths as (

    select
        order_id,
        {{ dbt.listagg('channel', "' > '", 'order by touched_at, touch_id') }} as path,
        count(*) as touch_count,
        sum(case when touch_type = 'click' then 1 else 0 end) as click_count,
        sum(case when touch_type = 'view' then 1 else 0 end) as view_count,
        min(touched_at) as first_touch_at,
        max(touched_at) as last_touch_at
    from journey_touches
    group by order_id

),

final as (

    select
        cast(o.order_id as {{ dbt.type_string() }}) as order_id,
        cast(o.person_key as {{ dbt.type_string() }}) as person_key,
        cast(o.converted_at as timestamp) as converted_at,
        {{ to_money('o.net_revenue') }} as net_revenue,
        cast(p.path as {{ dbt.type_string() }}) as path,
        cast(p.touch_count as bigint) as touch_count,
        cast(p.first_touch_at as timestamp) as first_touch_at,
        cast(p.last_touch_at as timestamp) as last_touch_at,
        cast(p.click_count as bigint) as click_count,
        cast(p.view_count as bigint) as view_count
    from orders as o
    inner join paths as p on p.order_id = o.order_id

)

select * from final
