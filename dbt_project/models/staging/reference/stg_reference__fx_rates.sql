{#- Daily FX rates: USD per unit of each currency. -#}

with source as (

    select * from {{ source('reference', 'reference_fx_rates') }}

),

renamed as (

    select
        cast(date as date) as rate_date,
        upper(trim(currency)) as currency,
        cast(usd_per_unit as {{ triangulate.double_type() }}) as usd_per_unit,
        _file,
        _line
    from source

)

select * from renamed
