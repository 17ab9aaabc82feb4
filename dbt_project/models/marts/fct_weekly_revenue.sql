{{ config(contract={'enforced': true}) }}

{#-
    Orders and revenue per week (Monday) x geo (docs/contracts.md §5). Refunds count in the week
    the order was placed, so a week's net revenue is what that week's orders are worth.
-#}

with orders as (

    select * from {{ ref('fct_orders') }}

),

final as (

    select
        week_start,
        geo,
        cast(count(*) as bigint) as orders,
        {{ to_money('sum(gross_revenue)') }} as gross_revenue,
        {{ to_money('sum(refunded)') }} as refunds,
        {{ to_money('sum(net_revenue)') }} as net_revenue
    from orders
    group by week_start, geo

)

select * from final
