{#-
    Orders in the reporting currency and placed in a geo.

        gross_revenue = amount_minor   / minor_units_per_major * reporting_per_unit(currency, order day)
        refunded      = refunded_minor / minor_units_per_major * reporting_per_unit(currency, order day)

    Refunds use the order day's rate so that net revenue is what the order was worth on the
    day it was placed. The product is computed in decimals (exact_major_units(), fx_decimal(),
    macros/money.sql) and rounded once to the money type, so every engine (DuckDB,
    PostgreSQL, Spark) gives the same micro-unit: a product in floating point that lies on
    a half-micro is rounded differently by different engines. The geo comes from the postal code; unknown postal codes land in
    var('unknown_geo').
-#}

with orders as (

    select * from {{ ref('int_collapsed_payment_orders') }}

),

fx as (

    select * from {{ ref('int_filled_fx_rates') }}

),

postal_codes as (

    select * from {{ ref('stg_reference__postal_codes') }}

),

converted as (

    select
        -- ids
        o.order_id,
        o.order_source,
        o.payment_count,
        o.customer_email_hash,
        coalesce(p.geo, '{{ var("unknown_geo") }}') as geo,
        o.postal_code,

        -- timestamps
        o.ordered_at,
        cast(o.ordered_at as date) as order_date,

        -- amounts in the original currency
        o.currency as currency_original,
        cast(o.amount_minor as {{ triangulate.double_type() }}) / {{ minor_units_per_major('o.currency') }} as amount_original,
        cast(o.refunded_minor as {{ triangulate.double_type() }}) / {{ minor_units_per_major('o.currency') }} as refunded_original,
        o.amount_minor,
        o.refunded_minor,

        -- amounts in the reporting currency
        fx.reporting_per_unit as fx_rate

    from orders as o
    left join postal_codes as p on p.postal_code = o.postal_code
    left join fx on fx.currency = o.currency and fx.rate_date = cast(o.ordered_at as date)

),

final as (

    select
        order_id,
        order_source,
        payment_count,
        customer_email_hash,
        geo,
        postal_code,
        ordered_at,
        order_date,
        currency_original,
        amount_original,
        refunded_original,
        fx_rate,
        {{ to_money(exact_major_units('amount_minor', 'currency_original') ~ ' * ' ~ fx_decimal('fx_rate')) }} as gross_revenue,
        {{ to_money(exact_major_units('refunded_minor', 'currency_original') ~ ' * ' ~ fx_decimal('fx_rate')) }} as refunded
    from converted

)

select * from final
