{#-
    Shopify orders, one row per order. Deliveries are deduped on the event they carry:
    X-Shopify-Event-Id, which Shopify documents as the key of a duplicate (a retry, a
    replay under a new X-Shopify-Webhook-Id, and one delivery per subscription when a
    shop has several for the topic all share it), else X-Shopify-Webhook-Id for
    deliveries without one; within one order id, since headers are not signed and a
    delivery must never remove another order's. Then one row per order id;
    order_webhook_count says how many distinct orders/create events carried the order id:
    more than 1 is a duplicated order, which the fct_orders gate reports. Money stays in
    the shop's currency; emails are hashed here.
-#}

with source as (

    select * from {{ source('shopify', 'shopify_events') }}
    where topic = 'orders/create'

),

keyed as (

    select
        *,
        {{ json_text('body', 'id') }} as resource_id,
        coalesce(nullif(trim({{ json_text('payload', 'headers.x-shopify-event-id') }}), ''), webhook_id) as event_key
    from source

),

deduped as (

    select
        *,
        row_number() over (partition by event_key, resource_id order by received_at, _file, _line) as delivery_number
    from keyed

),

renamed as (

    select
        -- ids
        {{ json_text('body', 'id') }} as shopify_order_id,
        {{ json_text('body', 'name') }} as order_name,

        -- amounts
        {{ json_text('body', 'total_price') }} as total_price,
        upper({{ json_text('body', 'currency') }}) as currency,

        -- customer
        {{ hashed_email(json_text('body', 'email')) }} as customer_email_hash,
        trim(coalesce(
            {{ json_text('body', 'shipping_address.zip') }},
            {{ json_text('body', 'billing_address.zip') }}
        )) as postal_code,

        -- timestamps
        {{ utc_timestamp_from_iso(json_text('body', 'created_at')) }} as ordered_at,
        {{ utc_timestamp_from_iso('received_at') }} as received_at,
        event_key,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where delivery_number = 1

),

final as (

    select
        shopify_order_id,
        order_name,
        cast(total_price as numeric(28, 6)) as total_price,
        currency,
        customer_email_hash,
        postal_code,
        ordered_at,
        received_at,
        _file,
        _line,
        row_number() over (partition by shopify_order_id order by received_at, event_key) as order_delivery_number,
        count(*) over (partition by shopify_order_id) as order_webhook_count
    from renamed

)

select
    shopify_order_id,
    order_name,
    total_price,
    currency,
    customer_email_hash,
    postal_code,
    ordered_at,
    received_at,
    order_webhook_count,
    _file,
    _line
from final
where order_delivery_number = 1
