{#-
    Google Ads campaign rows, one per day x campaign x metro; cost converted from micros to
    currency units. A day pulled again in a later export restates the earlier numbers.
-#}

with source as (

    select * from {{ source('google_ads', 'google_ads_campaign_stats') }}

),

deduped as (

    select
        *,
        row_number() over (
            partition by date, campaign_id, geo_target_metro
            order by _loaded_at desc, _file desc, _line desc
        ) as restatement_rank
    from source

),

renamed as (

    select
        -- ids
        campaign_id,
        campaign_name,
        nullif(trim(geo_target_metro), '') as geo_target_metro,

        -- dates
        cast(date as date) as date_day,

        -- amounts
        cast(cost_micros as numeric(28, 6)) / 1000000 as spend,
        upper(currency_code) as currency,
        cast(coalesce(impressions, '0') as bigint) as impressions,
        cast(coalesce(clicks, '0') as bigint) as clicks,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where restatement_rank = 1

)

select
    campaign_id,
    campaign_name,
    geo_target_metro,
    date_day,
    cast(spend as numeric(28, 6)) as spend,
    currency,
    impressions,
    clicks,
    _file,
    _line
from renamed
