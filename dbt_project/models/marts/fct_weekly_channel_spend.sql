{{ config(contract={'enforced': true}) }}

{#- Spend per week (Monday) x geo x channel in the reporting currency (docs/contracts.md §5). -#}

with daily as (

    select * from {{ ref('fct_daily_channel_spend') }}

),

final as (

    select
        {{ week_start('date') }} as week_start,
        geo,
        channel,
        {{ to_money('sum(spend)') }} as spend,
        cast(sum(impressions) as {{ triangulate.double_type() }}) as impressions,
        cast(sum(clicks) as {{ triangulate.double_type() }}) as clicks
    from daily
    group by {{ week_start('date') }}, geo, channel

)

select * from final
