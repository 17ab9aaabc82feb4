{#-
    One FX rate per currency and day, expressed in the reporting currency:

        reporting_per_unit(c, d) = usd_per_unit(c, d) / usd_per_unit(reporting, d)

    Days without a published rate (weekends, holidays, the days after the last file) carry
    the latest rate of the previous 7 days forward; the quote currency (var
    fx_quote_currency, USD: the file's rates are usd_per_unit) is 1 by definition, listed in
    the file or not. Orders and spend join on (day, currency) exactly, so every conversion
    uses the same rate. The currencies this model converts are the ones the GX gates accept
    (triangulate.quality.known_currencies: the file's currencies plus the quote currency).
-#}

{%- set quote = var('fx_quote_currency') | string | trim | upper %}

with published as (

    select rate_date, currency, usd_per_unit
    from {{ ref('stg_reference__fx_rates') }}
    where currency <> '{{ quote }}'

    union all

    select distinct rate_date, '{{ quote }}' as currency, cast(1 as {{ triangulate.double_type() }}) as usd_per_unit
    from {{ ref('stg_reference__fx_rates') }}

),

bounds as (

    select
        min(rate_date) as first_day,
        {{ dbt.datediff('min(rate_date)', 'max(rate_date)', 'day') }} + 7 as n_days
    from published

),

days as (

    select cast({{ dbt.dateadd('day', 'n.generated_number', 'b.first_day') }} as date) as rate_date
    from ({{ numbers(100000) }}) as n
    cross join bounds as b
    where n.generated_number < b.n_days

),

currencies as (

    select distinct currency from published

),

candidates as (

    select
        d.rate_date,
        c.currency,
        p.usd_per_unit,
        p.rate_date as published_on,
        row_number() over (partition by d.rate_date, c.currency order by p.rate_date desc) as recency
    from days as d
    cross join currencies as c
    inner join published as p
        on p.currency = c.currency
        and p.rate_date <= d.rate_date
        and p.rate_date > cast({{ dbt.dateadd('day', -7, 'd.rate_date') }} as date)

),

latest as (

    select rate_date, currency, usd_per_unit, published_on
    from candidates
    where recency = 1

),

final as (

    select
        l.rate_date,
        l.currency,
        l.usd_per_unit,
        l.usd_per_unit / r.usd_per_unit as reporting_per_unit,
        l.published_on
    from latest as l
    inner join latest as r
        on r.rate_date = l.rate_date
        and r.currency = '{{ triangulate.reporting_currency() }}'

)

select * from final
