{#-
    Spend of every platform as day x geo x campaign rows in the reporting currency.

    - Geo: Meta's DMA name and Google's geo target resource name map to geo keys through
      stg_reference__geos; a name that does not map becomes 'unmapped:<name>' so the
      relationships test on the marts names it (never silently national).
    - National rows (TikTok, offline rows without a geo, platform rows without a geo
      breakdown) are allocated to every geo by population_share (shares sum to 1, so the
      national total is kept exactly).
    - Weekly rows (offline, period = week) are spread evenly over their 7 days.
    - spend = spend_original * reporting_per_unit(currency, day).

    Impressions and clicks are allocated and spread the same way, so they may be fractional.
-#}

with geos as (

    select * from {{ ref('stg_reference__geos') }}

),

platform_rows as (

    select
        'meta' as platform,
        m.campaign_id,
        m.campaign_name,
        cast(null as {{ dbt.type_string() }}) as mapping_source,
        m.date_start as period_start,
        1 as period_days,
        case when m.dma_name is not null then coalesce(g.geo, {{ dbt.concat(["'unmapped:'", 'm.dma_name']) }}) end as geo,
        m.currency,
        m.spend,
        m.impressions,
        m.clicks
    from {{ ref('stg_meta__spend') }} as m
    left join geos as g on g.meta_dma_name = m.dma_name

    union all

    select
        'google_ads',
        s.campaign_id,
        s.campaign_name,
        null,
        s.date_day,
        1,
        case when s.geo_target_metro is not null
            then coalesce(g.geo, {{ dbt.concat(["'unmapped:'", 's.geo_target_metro']) }}) end,
        s.currency,
        s.spend,
        s.impressions,
        s.clicks
    from {{ ref('stg_google_ads__spend') }} as s
    left join geos as g on g.google_geo_target = s.geo_target_metro

    union all

    select
        'tiktok',
        campaign_id,
        coalesce(campaign_name, campaign_id),
        null,
        date_day,
        1,
        null,
        currency,
        spend,
        impressions,
        clicks
    from {{ ref('stg_tiktok__spend') }}

    union all

    select
        'offline',
        campaign,
        campaign,
        source_channel,
        period_start,
        case when period = 'week' then 7 else 1 end,
        geo,
        currency,
        spend,
        impressions,
        clicks
    from {{ ref('stg_offline__spend') }}

),

spread as (

    select
        p.*,
        cast({{ dbt.dateadd('day', 'n.generated_number', 'p.period_start') }} as date) as date_day
    from platform_rows as p
    inner join ({{ numbers(7) }}) as n on n.generated_number < p.period_days

),

allocated as (

    -- rows with a geo keep it; national rows go to every geo by population share
    select s.*, s.geo as allocated_geo, cast(1 as {{ triangulate.double_type() }}) as share, 'reported' as allocation
    from spread as s
    where s.geo is not null

    union all

    select s.*, g.geo as allocated_geo, g.population_share as share, 'population' as allocation
    from spread as s
    cross join geos as g
    where s.geo is null

),

final as (

    select
        -- keys
        a.date_day,
        a.allocated_geo as geo,
        a.platform,
        a.campaign_id,
        a.campaign_name,
        c.channel,
        a.allocation,

        -- amounts
        a.currency as currency_original,
        cast(a.spend as {{ triangulate.double_type() }}) / a.period_days * a.share as spend_original,
        cast(a.spend as {{ triangulate.double_type() }}) / a.period_days * a.share * fx.reporting_per_unit as spend,
        cast(a.impressions as {{ triangulate.double_type() }}) / a.period_days * a.share as impressions,
        cast(a.clicks as {{ triangulate.double_type() }}) / a.period_days * a.share as clicks

    from allocated as a
    left join {{ ref('int_filled_fx_rates') }} as fx
        on fx.currency = a.currency and fx.rate_date = a.date_day
    left join {{ ref('int_mapped_channels') }} as c
        on c.mapping_key = {{ channel_mapping_key('a.platform', 'a.campaign_name', 'a.mapping_source', 'null', 'null') }}

)

select * from final
