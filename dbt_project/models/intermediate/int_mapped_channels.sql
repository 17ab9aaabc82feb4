{#-
    Every distinct campaign key seen in spend and in web touches, with the channel the rules
    in seeds/channel_rules.csv give it: of the rules that match, the lowest priority wins.

    A rule matches when each of its non-blank cells matches the key: platform equal,
    campaign_pattern LIKE the lower-cased campaign name, source / medium equal the lower-cased
    utm_source / utm_medium (the file's channel for offline spend), referrer_pattern LIKE the
    referrer host. Consumers join on mapping_key (macro channel_mapping_key).
-#}

with spend_keys as (

    select distinct 'meta' as platform, campaign_name as campaign, cast(null as {{ dbt.type_string() }}) as source,
        cast(null as {{ dbt.type_string() }}) as medium, cast(null as {{ dbt.type_string() }}) as referrer_host
    from {{ ref('stg_meta__spend') }}

    union

    select distinct 'google_ads', campaign_name, null, null, null
    from {{ ref('stg_google_ads__spend') }}

    union

    select distinct 'tiktok', coalesce(campaign_name, campaign_id), null, null, null
    from {{ ref('stg_tiktok__spend') }}

    union

    select distinct 'offline', campaign, source_channel, null, null
    from {{ ref('stg_offline__spend') }}

),

touch_keys as (

    select distinct 'web' as platform, utm_campaign as campaign, utm_source as source, utm_medium as medium, referrer_host
    from {{ ref('int_unioned_touches') }}

),

all_keys as (

    select platform, campaign, source, medium, referrer_host from spend_keys
    union
    select platform, campaign, source, medium, referrer_host from touch_keys

),

keys as (

    select distinct
        {{ channel_mapping_key('platform', 'campaign', 'source', 'medium', 'referrer_host') }} as mapping_key,
        lower(platform) as platform,
        lower(campaign) as campaign,
        lower(source) as source,
        lower(medium) as medium,
        lower(referrer_host) as referrer_host
    from all_keys

),

rules as (

    select
        priority,
        lower(platform) as platform,
        lower(campaign_pattern) as campaign_pattern,
        lower(source) as source,
        lower(medium) as medium,
        lower(referrer_pattern) as referrer_pattern,
        channel
    from {{ ref('channel_rules') }}

),

matches as (

    select
        k.mapping_key,
        r.channel,
        r.priority as rule_priority,
        row_number() over (partition by k.mapping_key order by r.priority) as match_rank
    from keys as k
    inner join rules as r
        on r.platform = k.platform
        and (r.campaign_pattern is null or coalesce(k.campaign, '') like r.campaign_pattern)
        and (r.source is null or k.source = r.source)
        and (r.medium is null or k.medium = r.medium)
        and (r.referrer_pattern is null or k.referrer_host like r.referrer_pattern)

),

final as (

    select
        k.mapping_key,
        k.platform,
        k.campaign,
        k.source,
        k.medium,
        k.referrer_host,
        m.channel,
        m.rule_priority
    from keys as k
    left join matches as m on m.mapping_key = k.mapping_key and m.match_rank = 1

)

select * from final
