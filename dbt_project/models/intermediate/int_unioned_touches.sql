{{
    config(
        materialized=triangulate.device_materialization(),
        unique_key='anonymous_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{#-
    Touch candidates per device: every web session (its landing page's tags) and every ad
    impression a view-through pixel recorded (track 'Ad Impression'). Channel, touch type and
    person are applied downstream in fct_touchpoints, at query time, so edits to the channel
    rules and new identity links reach old touches without a full refresh.

    When a landing page has a click id but no utm_source, the click id implies the source
    (var click_id_sources: gclid -> google, fbclid -> facebook, ttclid -> tiktok, ...).
    Incremental per device, like int_sessionized_visits.
-#}

{%- set click_ids = var('click_id_sources') %}

with events as (

    select * from {{ ref('stg_segment__events') }}

),

{% if is_incremental() %}
changed_devices as (

    select distinct anonymous_id
    from events
    where _loaded_at > (select max(_loaded_at) from {{ this }})

),
{% endif %}

sessions as (

    select s.*
    from {{ ref('int_sessionized_visits') }} as s
    {% if is_incremental() %}
    inner join changed_devices as c on c.anonymous_id = s.anonymous_id
    {% endif %}

),

impressions as (

    select e.*
    from events as e
    {% if is_incremental() %}
    inner join changed_devices as c on c.anonymous_id = e.anonymous_id
    {% endif %}
    where e.event_type = 'track' and e.event_name = 'Ad Impression' and e.anonymous_id is not null

),

device_watermarks as (

    select anonymous_id, max(_loaded_at) as _loaded_at
    from (
        select anonymous_id, _loaded_at from sessions
        union all
        select anonymous_id, _loaded_at from impressions
    ) as loads
    group by anonymous_id

),

touches as (

    select
        session_id as touch_id,
        anonymous_id,
        'session' as touch_source,
        started_at as touched_at,
        coalesce(
            utm_source,
            case click_id_parameter
                {% for parameter, source in click_ids.items() -%}
                when '{{ parameter }}' then '{{ source }}'
                {% endfor -%}
            end
        ) as utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        referrer_host,
        click_id_parameter,
        session_id
    from sessions

    union all

    select
        message_id as touch_id,
        anonymous_id,
        'ad_impression' as touch_source,
        event_at as touched_at,
        coalesce(property_utm_source, utm_source) as utm_source,
        utm_medium,
        coalesce(property_utm_campaign, utm_campaign) as utm_campaign,
        utm_content,
        cast(null as {{ dbt.type_string() }}) as referrer_host,
        cast(null as {{ dbt.type_string() }}) as click_id_parameter,
        cast(null as {{ dbt.type_string() }}) as session_id
    from impressions

),

final as (

    select
        t.*,
        w._loaded_at
    from touches as t
    inner join device_watermarks as w on w.anonymous_id = t.anonymous_id

)

select * from final
