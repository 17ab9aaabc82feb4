{#- Geos (DMA codes) with population weights and each ad platform's name for them. -#}

with source as (

    select * from {{ source('reference', 'reference_geos') }}

),

renamed as (

    select
        trim(geo) as geo,
        name as geo_name,
        cast(population_weight as {{ triangulate.double_type() }}) as population_weight,
        nullif(trim(meta_dma_name), '') as meta_dma_name,
        nullif(trim(google_geo_target), '') as google_geo_target,
        _file,
        _line
    from source

),

final as (

    select
        *,
        -- national spend is allocated by this share; normalized so shares sum to exactly 1
        population_weight / sum(population_weight) over () as population_share
    from renamed

)

select * from final
