{{ config(contract={'enforced': true}) }}

{#-
    fct_weekly_revenue with every (week, geo) cell present: a geo with no order in a week
    has a row of zeros. Geo experiments read a panel without gaps (a missing cell in a
    treated geo would read as a huge negative lift), so the filling happens here, once, and
    `triangulate geo design` / `measurement.experiment_plan` read this table. Weeks are those
    with any spend or revenue; geos those with any revenue.
-#}

with revenue as (

    select * from {{ ref('fct_weekly_revenue') }}

),

weeks as (

    select week_start from revenue
    union
    select week_start from {{ ref('fct_weekly_channel_spend') }}

),

geos as (

    select distinct geo from revenue

),

final as (

    select
        weeks.week_start,
        geos.geo,
        cast(coalesce(revenue.orders, 0) as bigint) as orders,
        {{ to_money('coalesce(revenue.gross_revenue, 0)') }} as gross_revenue,
        {{ to_money('coalesce(revenue.refunds, 0)') }} as refunds,
        {{ to_money('coalesce(revenue.net_revenue, 0)') }} as net_revenue
    from weeks
    cross join geos
    left join revenue
        on revenue.week_start = weeks.week_start
        and revenue.geo = geos.geo

)

select * from final
