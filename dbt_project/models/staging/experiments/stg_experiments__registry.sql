{#- Geo experiments from the registry YAML, one row per experiment id (latest file wins). -#}

with source as (

    select * from {{ source('experiments', 'experiments') }}

),

deduped as (

    select
        *,
        row_number() over (partition by id order by _loaded_at desc, _file desc, _line desc) as restatement_rank
    from source

),

renamed as (

    select
        -- ids
        id as experiment_id,
        lower(channel) as channel,
        lower(kind) as experiment_kind,
        metric,

        -- geos (JSON arrays of geo keys, as text)
        treatment_geos,
        control_geos,

        -- dates
        cast(start as date) as start_date,
        cast("end" as date) as end_date

    from deduped
    where restatement_rank = 1

)

select * from renamed
