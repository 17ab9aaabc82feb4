{#-
    TikTok report rows, one per day x campaign (TikTok reports national totals: no geo).
    A day pulled again in a later export restates the earlier numbers.
-#}

with source as (

    select * from {{ source('tiktok', 'tiktok_report') }}

),

deduped as (

    select
        *,
        row_number() over (
            partition by stat_time_day, campaign_id
            order by _loaded_at desc, _file desc, _line desc
        ) as restatement_rank
    from source

),

renamed as (

    select
        -- ids
        campaign_id,
        campaign_name,

        -- dates: stat_time_day is 'YYYY-MM-DD 00:00:00'
        cast(substr(stat_time_day, 1, 10) as date) as date_day,

        -- amounts
        cast(spend as numeric(28, 6)) as spend,
        upper(currency) as currency,
        cast(coalesce(impressions, '0') as bigint) as impressions,
        cast(coalesce(clicks, '0') as bigint) as clicks,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where restatement_rank = 1

)

select * from renamed
