{{ config(contract={'enforced': true}) }}

{#-
    Every marketing touch of every tracked person (docs/contracts.md §5).

    - view: an ad impression recorded by a view-through pixel (track 'Ad Impression');
    - click: a session whose landing page carries an ad click id (gclid, fbclid, ...) or a
      utm_medium in var('click_utm_mediums') (paid media and email links);
    - visit: any other session; its channel is organic when the referrer is a search
      engine, else direct (seeds/channel_rules.csv decides).

    The person is the device's linked user ('user:<id>') or the device itself
    ('anon:<anonymousId>'). Rebuilt from the incremental int_unioned_touches each run, so
    rule edits and new identity links apply to every touch.
-#}

with touches as (

    select * from {{ ref('int_unioned_touches') }}

),

devices as (

    select identifier as anonymous_id, person_key
    from {{ ref('int_resolved_identities') }}
    where identifier_type = 'anonymous_id'

),

channels as (

    select mapping_key, channel from {{ ref('int_mapped_channels') }}

),

final as (

    select
        -- ids
        cast(t.touch_id as {{ dbt.type_string() }}) as touch_id,
        cast(coalesce(d.person_key, {{ person_key('null', 't.anonymous_id') }}) as {{ dbt.type_string() }}) as person_key,

        -- touch
        cast(t.touched_at as timestamp) as touched_at,
        cast(c.channel as {{ dbt.type_string() }}) as channel,
        cast(t.utm_campaign as {{ dbt.type_string() }}) as campaign,
        cast(case
            when t.touch_source = 'ad_impression' then 'view'
            when t.click_id_parameter is not null then 'click'
            when lower(t.utm_medium) in {{ sql_in_list(var('click_utm_mediums')) }} then 'click'
            else 'visit'
        end as {{ dbt.type_string() }}) as touch_type,

        -- extras
        cast(t.anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
        cast(t.session_id as {{ dbt.type_string() }}) as session_id,
        cast(t.utm_source as {{ dbt.type_string() }}) as utm_source,
        cast(t.utm_medium as {{ dbt.type_string() }}) as utm_medium,
        cast(t.utm_content as {{ dbt.type_string() }}) as utm_content,
        cast(t.referrer_host as {{ dbt.type_string() }}) as referrer_host,
        cast(t.click_id_parameter as {{ dbt.type_string() }}) as click_id_parameter

    from touches as t
    left join devices as d on d.anonymous_id = t.anonymous_id
    left join channels as c
        on c.mapping_key = {{ channel_mapping_key("'web'", 't.utm_campaign', 't.utm_source', 't.utm_medium', 't.referrer_host') }}

)

select * from final
