{#-
    Meta Insights rows, one per day x campaign x DMA. A day pulled again in a later export
    restates the earlier numbers: the latest loaded row wins.
-#}

with source as (

    select * from {{ source('meta', 'meta_insights') }}

),

deduped as (

    select
        *,
        row_number() over (
            partition by date_start, campaign_id, dma
            order by _loaded_at desc, _file desc, _line desc
        ) as restatement_rank
    from source

),

renamed as (

    select
        -- ids
        account_id,
        campaign_id,
        campaign_name,
        nullif(trim(dma), '') as dma_name,

        -- dates
        cast(date_start as date) as date_start,
        cast(date_stop as date) as date_stop,

        -- amounts
        cast(spend as numeric(28, 6)) as spend,
        upper(account_currency) as currency,
        cast(coalesce(impressions, '0') as bigint) as impressions,
        cast(coalesce(clicks, '0') as bigint) as clicks,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where restatement_rank = 1

)

select * from renamed
