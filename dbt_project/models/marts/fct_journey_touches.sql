{{ config(contract={'enforced': true}) }}

{#-
    Journey assignment: every touch of fct_touchpoints once, with the order whose journey
    it is in. The one owner of the journey windows: fct_conversion_journeys aggregates the
    converting journeys, MTA (triangulate.mta) reads every touch (converting or not) from
    here. L = var('journey_lookback_days').

    A touch belongs to an order's journey when it is the person's, at or before the order,
    after the person's previous order, and inside its window:

        visit: touched_at >= converted_at - L days
        click: touched_at >= converted_at - min(L, var('click_window_days')) days
        view:  touched_at >= converted_at - min(L, var('view_window_days')) days

    So a touch belongs to at most one order: the person's first order at or after it, when
    the touch is inside that order's window. order_seq numbers the person's orders (by
    ordered_at, then order_id). A touch in no order's journey (never near an order, or
    outside its window: a view two days before an order with a one-day view window) has
    NULL order columns: it is a non-converting touch, and MTA cuts a person's
    non-converting touches into journeys at silences longer than L days (the same var).
    A build counts recent touches as non-converting; the next build re-assigns them if
    they convert.

    Cost: one hash join of the touches to the orders (a window over the orders only); no
    sort of the touches: MTA orders each journey's touches itself, one bucket of people at
    a time, where the sorts stay cache-sized (docs/benchmarks_mta.md). Columns from
    fct_touchpoints and fct_orders keep their (contracted) types.
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
        row_number() over (partition by person_key order by ordered_at, order_id) as order_seq,
        lag(ordered_at) over (partition by person_key order by ordered_at, order_id) as previous_converted_at
    from {{ ref('fct_orders') }}
    where person_key is not null

),

final as (

    select
        t.touch_id,
        t.person_key,
        t.touched_at,
        t.channel,
        t.campaign,
        t.touch_type,
        o.order_id,
        cast(o.order_seq as bigint) as order_seq,
        o.converted_at,
        o.net_revenue
    from {{ ref('fct_touchpoints') }} as t
    left join orders as o
        on o.person_key = t.person_key
        and t.touched_at <= o.converted_at
        and (o.previous_converted_at is null or t.touched_at > o.previous_converted_at)
        and t.touched_at >= {{ dbt.dateadd('day', -lookback, 'o.converted_at') }}
        and (t.touch_type <> 'click' or t.touched_at >= {{ dbt.dateadd('day', -click_window, 'o.converted_at') }})
        and (t.touch_type <> 'view' or t.touched_at >= {{ dbt.dateadd('day', -view_window, 'o.converted_at') }})

)

select * from final
