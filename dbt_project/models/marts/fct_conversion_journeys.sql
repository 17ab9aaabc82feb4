{{ config(contract={'enforced': true}) }}

{#-
    One row per conversion of a tracked person with the touches that led to it
    (docs/contracts.md §5): the converting journeys of fct_journey_touches, which owns the
    journey rules (lookback, click and view windows, previous order; vars
    journey_lookback_days, click_window_days, view_window_days), aggregated per order.

    path is the touches' channels in time order joined with ' > ' (ChannelAttribution's
    format). Orders of tracked persons with no touch in the window are left out; untracked
    orders (no Order Completed event, no identified email) are in fct_orders only.
-#}

with journey_touches as (

    select * from {{ ref('fct_journey_touches') }}
    where order_id is not null

),

paths as (

    select
        order_id,
        person_key,
        converted_at,
        net_revenue,
        {{ ordered_listagg('channel', "' > '", ['touched_at', 'touch_id']) }} as path,
        count(*) as touch_count,
        sum(case when touch_type = 'click' then 1 else 0 end) as click_count,
        sum(case when touch_type = 'view' then 1 else 0 end) as view_count,
        min(touched_at) as first_touch_at,
        max(touched_at) as last_touch_at
    from journey_touches
    group by order_id, person_key, converted_at, net_revenue

),

final as (

    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(person_key as {{ dbt.type_string() }}) as person_key,
        cast(converted_at as timestamp) as converted_at,
        {{ to_money('net_revenue') }} as net_revenue,
        cast(path as {{ dbt.type_string() }}) as path,
        cast(touch_count as bigint) as touch_count,
        cast(first_touch_at as timestamp) as first_touch_at,
        cast(last_touch_at as timestamp) as last_touch_at,
        cast(click_count as bigint) as click_count,
        cast(view_count as bigint) as view_count
    from paths

)

select * from final
