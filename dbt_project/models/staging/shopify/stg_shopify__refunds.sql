{#-
    Shopify refunds from refunds/create webhooks, one row per refund (deliveries deduped on
    the event they carry, X-Shopify-Event-Id, else X-Shopify-Webhook-Id, within one refund
    id, as in stg_shopify__orders; then on the refund id). The refunded amount is the
    first refund transaction's amount, in the shop currency.
-#}

with source as (

    select * from {{ source('shopify', 'shopify_events') }}
    where topic = 'refunds/create'

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
        {{ json_text('body', 'id') }} as shopify_refund_id,
        {{ json_text('body', 'order_id') }} as shopify_order_id,

        -- amounts
        cast({{ json_text('body', 'transactions.0.amount') }} as numeric(28, 6)) as refund_amount,
        upper({{ json_text('body', 'transactions.0.currency') }}) as currency,

        -- timestamps
        {{ utc_timestamp_from_iso(json_text('body', 'created_at')) }} as refunded_at,
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
        *,
        row_number() over (partition by shopify_refund_id order by received_at, event_key) as refund_delivery_number
    from renamed

)

select
    shopify_refund_id,
    shopify_order_id,
    refund_amount,
    currency,
    refunded_at,
    received_at,
    _file,
    _line
from final
where refund_delivery_number = 1
