{#-
    Geo experiments from the registry YAML, one row per experiment id: the current entry.

    The one owner of "which registry entry is current for an id": an id registered again
    (a restatement, e.g. a corrected end date) is taken from the latest landing file
    (latest load, then the later file name, then the later entry of that file). The Dagster
    experiments asset reads this model; Python validates each row (triangulate.geo.registry)
    and does not dedupe again.
-#}

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

        -- geos (a JSON array of geo keys as text, or the text as written, e.g. 'G01, G02')
        treatment_geos,
        control_geos,

        -- dates
        cast(start as date) as start_date,
        cast({{ adapter.quote('end') }} as date) as end_date,

        -- optional fields as written (text; validated where the specs are built)
        {{ triangulate.json_text('payload', 'spend_change') }} as spend_change,
        {{ triangulate.json_text('payload', 'description') }} as description,

        -- lineage: the landing file and entry this row comes from
        _file as source_file,
        _line as source_line

    from deduped
    where restatement_rank = 1

)

select * from renamed
