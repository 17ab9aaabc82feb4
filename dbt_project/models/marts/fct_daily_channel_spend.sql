{{ config(contract={'enforced': true}) }}

{#- Spend per day x geo x channel x campaign in the reporting currency (docs/contracts.md §5). -#}

with spend as (

    select * from {{ ref('int_allocated_daily_spend') }}

),

aggregated as (

    select
        date_day,
        geo,
        channel,
        platform,
        campaign_id,
        max(campaign_name) as campaign_name,
        max(currency_original) as currency_original,
        sum(spend_original) as spend_original,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from spend
    group by date_day, geo, channel, platform, campaign_id

),

final as (

    select
        -- keys
        cast(date_day as date) as date,
        cast(geo as {{ dbt.type_string() }}) as geo,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(platform as {{ dbt.type_string() }}) as platform,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(campaign_name as {{ dbt.type_string() }}) as campaign_name,

        -- amounts
        {{ to_money('spend') }} as spend,
        cast(currency_original as {{ dbt.type_string() }}) as currency_original,
        {{ to_money('spend_original') }} as spend_original,
        cast(impressions as {{ triangulate.double_type() }}) as impressions,
        cast(clicks as {{ triangulate.double_type() }}) as clicks

    from aggregated

)

select * from final
