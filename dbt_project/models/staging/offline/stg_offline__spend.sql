{#-
    Offline and other-platform spend rows (TV, podcast, OOH, ...), one per period start x
    channel x campaign x geo. `period` (day or week) comes from an optional `period` column
    of the file, else var('offline_default_period') (day): a row covers its date, or with
    `period` = week the Monday-to-Sunday week its date (a Monday) starts
    (docs/landing_formats.md). A blank geo is a national buy. A row restated in a later
    file wins over the earlier one.
-#}

with source as (

    select * from {{ source('offline', 'offline_spend') }}

),

deduped as (

    select
        *,
        row_number() over (
            partition by date, channel, campaign, geo
            order by _loaded_at desc, _file desc, _line desc
        ) as restatement_rank
    from source

),

renamed as (

    select
        -- ids
        lower(trim(channel)) as source_channel,
        trim(campaign) as campaign,
        nullif(trim(geo), '') as geo,

        -- dates
        cast(date as date) as period_start,
        lower(coalesce(nullif(trim({{ json_text('payload', 'period') }}), ''), '{{ var("offline_default_period") }}')) as period,

        -- amounts
        cast(spend as numeric(28, 6)) as spend,
        upper(trim(currency)) as currency,
        cast(nullif(trim(impressions), '') as bigint) as impressions,
        cast(nullif(trim(clicks), '') as bigint) as clicks,

        -- lineage: the landing file and line of the kept row
        _file,
        _line

    from deduped
    where restatement_rank = 1

)

select * from renamed
