{#- on_schema_change append_new_columns: a warehouse built before a column was added
    (e.g. _file, _line) keeps its rows, with nulls in the new column for them. -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy=triangulate.event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

{#-
    Tracking events, one row per messageId (client and server copies of the same message
    are one event). The fields sessions, touchpoints and the identity graph need are pulled
    out of the Segment payload; the email in identify traits is hashed here.
    Incremental on the raw load time: a run parses only newly loaded messages.
-#}

with source as (

    select * from {{ source('segment', 'segment_events') }}
    {% if is_incremental() %}
    where _loaded_at > (select max(_loaded_at) from {{ this }})
    {% endif %}

),

deduped as (

    select
        *,
        row_number() over (partition by message_id order by received_at, _file, _line) as copy_number
    from source

),

renamed as (

    select
        -- ids
        message_id,
        type as event_type,
        event as event_name,
        anonymous_id,
        user_id,
        {{ json_text('payload', 'previousId') }} as previous_id,

        -- page
        {{ json_text('payload', 'context.page.url') }} as page_url,
        {{ json_text('payload', 'context.page.referrer') }} as page_referrer,

        -- campaign (UTM parameters as parsed by the tracking library)
        {{ json_text('payload', 'context.campaign.source') }} as utm_source,
        {{ json_text('payload', 'context.campaign.medium') }} as utm_medium,
        {{ json_text('payload', 'context.campaign.name') }} as utm_campaign,
        {{ json_text('payload', 'context.campaign.content') }} as utm_content,
        {{ json_text('payload', 'context.campaign.term') }} as utm_term,

        -- properties and traits
        {{ json_text('payload', 'properties.order_id') }} as order_reference,
        {{ json_text('payload', 'properties.utm_source') }} as property_utm_source,
        {{ json_text('payload', 'properties.utm_campaign') }} as property_utm_campaign,
        {{ hashed_email(json_text('payload', 'traits.email')) }} as email_hash,

        -- timestamps
        {{ utc_timestamp_from_iso(adapter.quote('timestamp')) }} as event_at,
        {{ utc_timestamp_from_iso('received_at') }} as received_at,
        _loaded_at,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where copy_number = 1
    {% if is_incremental() %}
    {{ triangulate.new_keys_only('message_id') }}
    {% endif %}

)

select * from renamed
