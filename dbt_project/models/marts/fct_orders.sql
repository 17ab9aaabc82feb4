{{ config(contract={'enforced': true}) }}

{#-
    One row per order, however many payment events and deliveries it took (docs/contracts.md §5).
    net_revenue = gross_revenue - refunded, both in the reporting currency at the order day's
    rate. customer_key is the tracked person when the order matches one, else the hashed email.
-#}

with orders as (

    select * from {{ ref('int_converted_orders') }}

),

persons as (

    select * from {{ ref('int_matched_order_persons') }}

),

final as (

    select
        -- ids
        cast(o.order_id as {{ dbt.type_string() }}) as order_id,
        cast(o.ordered_at as timestamp) as ordered_at,
        cast(coalesce(
            p.person_key,
            {{ dbt.concat(["'email:'", 'o.customer_email_hash']) }},
            {{ dbt.concat(["'order:'", 'o.order_id']) }}
        ) as {{ dbt.type_string() }}) as customer_key,
        cast(o.geo as {{ dbt.type_string() }}) as geo,

        -- amounts (reporting currency)
        {{ to_money('o.gross_revenue') }} as gross_revenue,
        {{ to_money('o.refunded') }} as refunded,
        {{ to_money(to_money('o.gross_revenue') ~ ' - ' ~ to_money('o.refunded')) }} as net_revenue,
        cast(o.currency_original as {{ dbt.type_string() }}) as currency_original,

        -- extras
        cast(o.order_date as date) as order_date,
        {{ week_start('o.order_date') }} as week_start,
        cast(o.order_source as {{ dbt.type_string() }}) as order_source,
        cast(o.payment_count as integer) as payment_count,
        {{ to_money('o.amount_original') }} as amount_original,
        {{ to_money('o.refunded_original') }} as refunded_original,
        cast(o.fx_rate as {{ triangulate.double_type() }}) as fx_rate,
        cast(p.person_key as {{ dbt.type_string() }}) as person_key,
        cast(p.match_method as {{ dbt.type_string() }}) as person_match_method

    from orders as o
    left join persons as p on p.order_id = o.order_id

)

select * from final
