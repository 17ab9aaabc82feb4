{#- Postal code -> geo. -#}

with source as (

    select * from {{ source('reference', 'reference_postal_codes') }}

),

renamed as (

    select
        trim(postal_code) as postal_code,
        trim(geo) as geo,
        _file,
        _line
    from source

)

select * from renamed
