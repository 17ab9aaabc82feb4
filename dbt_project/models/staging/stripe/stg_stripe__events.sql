{#- on_schema_change append_new_columns: a warehouse built before a column was added
    (e.g. _file, _line) keeps its rows, with nulls in the new column for them. -#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy=triangulate.event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

{#-
    One row per Stripe event (deliveries deduped on the event id: Stripe retries deliver
    the same event more than once). Fields of the event's object that the order model needs
    are pulled out by object type; emails are hashed here and never leave staging in clear.
    Incremental on the raw load time: a run parses only newly loaded deliveries.
-#}

with source as (

    select * from {{ source('stripe', 'stripe_events') }}
    {% if is_incremental() %}
    where _loaded_at > (select max(_loaded_at) from {{ this }})
    {% endif %}

),

parsed as (

    select
        -- ids
        {{ json_text('body', 'id') }} as event_id,
        {{ json_text('body', 'type') }} as event_type,
        {{ json_text('body', 'data.object.object') }} as object_type,
        {{ json_text('body', 'data.object.id') }} as object_id,
        {{ json_text('body', 'data.object.payment_intent') }} as object_payment_intent,
        {{ json_text('body', 'data.object.latest_charge') }} as object_latest_charge,
        {{ json_text('body', 'data.object.metadata.order_id') }} as order_reference,

        -- amounts (integer minor units)
        {{ json_text('body', 'data.object.amount_total') }} as amount_total,
        {{ json_text('body', 'data.object.amount_received') }} as amount_received,
        {{ json_text('body', 'data.object.amount_captured') }} as amount_captured,
        {{ json_text('body', 'data.object.amount') }} as amount,
        {{ json_text('body', 'data.object.amount_refunded') }} as amount_refunded,
        {{ json_text('body', 'data.object.currency') }} as currency,

        -- customer
        coalesce(
            {{ json_text('body', 'data.object.customer_details.email') }},
            {{ json_text('body', 'data.object.billing_details.email') }},
            {{ json_text('body', 'data.object.receipt_email') }}
        ) as customer_email,
        coalesce(
            {{ json_text('body', 'data.object.customer_details.address.postal_code') }},
            {{ json_text('body', 'data.object.billing_details.address.postal_code') }}
        ) as postal_code,

        -- timestamps
        {{ json_text('body', 'created') }} as created_unix,
        {{ json_text('body', 'data.object.created') }} as object_created_unix,
        received_at,
        _loaded_at,
        _file,
        _line

    from source

),

deduped as (

    select
        *,
        row_number() over (partition by event_id order by received_at, _file, _line) as delivery_number
    from parsed

),

final as (

    select
        -- ids
        event_id,
        event_type,
        object_type,
        object_id,
        case
            when object_type = 'payment_intent' then object_id
            else object_payment_intent
        end as payment_intent_id,
        case
            when object_type = 'charge' then object_id
            else object_latest_charge
        end as charge_id,
        order_reference,

        -- amounts
        cast(case object_type
            when 'checkout.session' then amount_total
            when 'payment_intent' then amount_received
            when 'charge' then coalesce(amount_captured, amount)
        end as bigint) as amount_minor,
        cast(case when object_type = 'charge' then amount_refunded end as bigint) as amount_refunded_minor,
        upper(currency) as currency,

        -- customer
        {{ hashed_email('customer_email') }} as customer_email_hash,
        trim(postal_code) as postal_code,

        -- timestamps
        {{ timestamp_from_unix_seconds('created_unix') }} as created_at,
        {{ timestamp_from_unix_seconds('object_created_unix') }} as object_created_at,
        {{ utc_timestamp_from_iso('received_at') }} as received_at,
        _loaded_at,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where delivery_number = 1
    {% if is_incremental() %}
    {{ triangulate.new_keys_only('event_id') }}
    {% endif %}

)

select * from final
