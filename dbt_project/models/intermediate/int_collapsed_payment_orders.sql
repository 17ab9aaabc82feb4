{#-
    One row per order from payment events, in the order's own currency (minor units).

    Stripe: one purchase emits checkout.session.completed, payment_intent.succeeded and
    charge.succeeded (plus charge.refunded for refunds), each possibly delivered twice and
    out of order. Events are grouped by the shop's order id (metadata.order_id, else the
    order id another event of the same payment intent carries, else the payment intent id):

    - ordered_at = the earliest creation time of the purchase events;
    - amount = the largest amount any of them reports (they agree when all arrived);
    - refunded = per charge, the largest cumulative amount_refunded seen (refund events carry
      a running total, so arrival order does not matter), summed over the order's charges;
    - payment_count = the distinct payment intents carrying the order id (1 for a clean
      order). Two payments for one order id are a duplicated order (paid twice, or replayed
      under new ids): the row stays one per order, and the GX gate on marts.fct_orders stops
      the models with the order id instead of letting the duplicate pass silently.

    Shopify: orders/create gives the order, refunds/create the refunds (summed per order);
    payment_count = the distinct orders/create webhooks for the order id.
-#}

with stripe_events as (

    select * from {{ ref('stg_stripe__events') }}
    where event_type in (
        'checkout.session.completed', 'payment_intent.succeeded', 'charge.succeeded', 'charge.refunded'
    )

),

intent_orders as (

    -- the order id any event of a payment intent carries
    select payment_intent_id, max(order_reference) as order_reference
    from stripe_events
    where payment_intent_id is not null and order_reference is not null
    group by payment_intent_id

),

keyed as (

    select
        e.*,
        coalesce(e.order_reference, i.order_reference, e.payment_intent_id) as order_id
    from stripe_events as e
    left join intent_orders as i on i.payment_intent_id = e.payment_intent_id

),

charge_refunds as (

    select order_id, charge_id, max(amount_refunded_minor) as refunded_minor
    from keyed
    where charge_id is not null and amount_refunded_minor is not null
    group by order_id, charge_id

),

order_refunds as (

    select order_id, sum(refunded_minor) as refunded_minor
    from charge_refunds
    group by order_id

),

stripe_orders as (

    select
        order_id,
        'stripe' as order_source,
        coalesce(
            min(case when event_type <> 'charge.refunded' then created_at end),
            min(object_created_at)
        ) as ordered_at,
        max(currency) as currency,
        max(case when event_type <> 'charge.refunded' then amount_minor end) as purchase_amount_minor,
        max(amount_minor) as any_amount_minor,
        max(customer_email_hash) as customer_email_hash,
        max(postal_code) as postal_code,
        greatest(count(distinct payment_intent_id), 1) as payment_count
    from keyed
    where order_id is not null
    group by order_id

),

shopify_refunds as (

    select shopify_order_id, sum(refund_amount) as refund_amount
    from {{ ref('stg_shopify__refunds') }}
    group by shopify_order_id

),

shopify_orders as (

    select
        {{ dbt.concat(["'shopify_'", 'o.shopify_order_id']) }} as order_id,
        'shopify' as order_source,
        o.ordered_at,
        o.currency,
        cast(round(o.total_price * {{ minor_units_per_major('o.currency') }}) as bigint) as amount_minor,
        cast(round(coalesce(r.refund_amount, 0) * {{ minor_units_per_major('o.currency') }}) as bigint) as refunded_minor,
        o.customer_email_hash,
        o.postal_code,
        o.order_webhook_count as payment_count
    from {{ ref('stg_shopify__orders') }} as o
    left join shopify_refunds as r on r.shopify_order_id = o.shopify_order_id

),

final as (

    select
        s.order_id,
        s.order_source,
        s.ordered_at,
        s.currency,
        cast(coalesce(s.purchase_amount_minor, s.any_amount_minor) as bigint) as amount_minor,
        cast(coalesce(r.refunded_minor, 0) as bigint) as refunded_minor,
        s.customer_email_hash,
        s.postal_code,
        s.payment_count
    from stripe_orders as s
    left join order_refunds as r on r.order_id = s.order_id

    union all

    select
        order_id,
        order_source,
        ordered_at,
        currency,
        amount_minor,
        refunded_minor,
        customer_email_hash,
        postal_code,
        payment_count
    from shopify_orders

)

select * from final
