{{
    config(
        materialized=triangulate.device_materialization(),
        unique_key='anonymous_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{#-
    Web sessions: a device's page views split where more than var('session_timeout_minutes')
    pass between two consecutive views. The landing page (first view) carries what makes the
    session a touch: its UTM tags (context.campaign, else the URL's utm_* parameters), click id
    parameter and referrer.

    Incremental per device: a run recomputes every session of the devices that received new
    events (delete+insert on anonymous_id), so late and out-of-order events re-split the
    device's sessions correctly. session_id is the device and the landing page's messageId.
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

device_events as (

    select e.*
    from events as e
    {% if is_incremental() %}
    inner join changed_devices as c on c.anonymous_id = e.anonymous_id
    {% endif %}
    where e.anonymous_id is not null

),

device_watermarks as (

    -- the newest load of each device's events: the next run's incremental watermark
    select anonymous_id, max(_loaded_at) as _loaded_at
    from device_events
    group by anonymous_id

),

page_views as (

    select
        *,
        lag(event_at) over (partition by anonymous_id order by event_at, message_id) as previous_view_at
    from device_events
    where event_type = 'page'

),

numbered as (

    select
        *,
        sum(case
            when previous_view_at is null
                or event_at > {{ dbt.dateadd('minute', var('session_timeout_minutes'), 'previous_view_at') }}
            then 1 else 0 end
        ) over (partition by anonymous_id order by event_at, message_id rows between unbounded preceding and current row)
            as session_number
    from page_views

),

ranked as (

    select
        *,
        row_number() over (partition by anonymous_id, session_number order by event_at, message_id) as view_number
    from numbered

),

sessions as (

    select
        anonymous_id,
        session_number,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        count(*) as page_views
    from ranked
    group by anonymous_id, session_number

),

landing_pages as (

    select
        anonymous_id,
        session_number,
        message_id as landing_message_id,
        page_url as landing_url,
        page_referrer as referrer,
        coalesce(utm_source, {{ url_parameter('page_url', 'utm_source') }}) as utm_source,
        coalesce(utm_medium, {{ url_parameter('page_url', 'utm_medium') }}) as utm_medium,
        coalesce(utm_campaign, {{ url_parameter('page_url', 'utm_campaign') }}) as utm_campaign,
        coalesce(utm_content, {{ url_parameter('page_url', 'utm_content') }}) as utm_content,
        coalesce(utm_term, {{ url_parameter('page_url', 'utm_term') }}) as utm_term,
        case
            {% for parameter in click_ids -%}
            when {{ url_parameter('page_url', parameter) }} is not null then '{{ parameter }}'
            {% endfor -%}
        end as click_id_parameter
    from ranked
    where view_number = 1

),

final as (

    select
        -- ids
        {{ dbt.concat(['s.anonymous_id', "':'", 'l.landing_message_id']) }} as session_id,
        s.anonymous_id,
        l.landing_message_id,

        -- landing page
        l.landing_url,
        l.referrer,
        {{ url_host('l.referrer') }} as referrer_host,
        l.utm_source,
        l.utm_medium,
        l.utm_campaign,
        l.utm_content,
        l.utm_term,
        l.click_id_parameter,

        -- timestamps
        s.started_at,
        s.ended_at,
        s.page_views,
        w._loaded_at

    from sessions as s
    inner join landing_pages as l
        on l.anonymous_id = s.anonymous_id and l.session_number = s.session_number
    inner join device_watermarks as w on w.anonymous_id = s.anonymous_id

)

select * from final
