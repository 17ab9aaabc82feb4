{#-
    Shopify orders, one row per order (orders/create deliveries deduped on the webhook id,
    then on the order id; order_webhook_count says how many distinct webhooks carried the
    order id: more than 1 is a duplicated order, which the fct_orders gate reports). Money stays in the shop's currency; emails are hashed here.
-#}

with source as (

    select * from {{ source('shopify', 'shopify_events') }}
    where topic = 'orders/create'

),

deduped as (

    select
        *,
        row_number() over (partition by webhook_id order by received_at, _file, _line) as delivery_number
    from source

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
        webhook_id

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
        row_number() over (partition by shopify_order_id order by received_at, webhook_id) as order_delivery_number,
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
    order_webhook_count
from final
where order_delivery_number = 1
