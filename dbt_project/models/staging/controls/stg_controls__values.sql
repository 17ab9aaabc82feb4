{#-
    Non-media drivers, one row per day x geo x control name, whatever names the brand
    lands. A blank geo is a national value (broadcast to every geo downstream). A value
    restated in a later file wins. mmm_weekly_input fills the days without a value.
-#}

with source as (

    select * from {{ source('controls', 'controls') }}

),

deduped as (

    select
        *,
        row_number() over (
            partition by date, geo, name
            order by _loaded_at desc, _file desc, _line desc
        ) as restatement_rank
    from source

),

renamed as (

    select
        cast(date as date) as date_day,
        nullif(trim(geo), '') as geo,
        lower(trim(name)) as control_name,
        cast(value as {{ triangulate.double_type() }}) as control_value,
        _file,
        _line
    from deduped
    where restatement_rank = 1

)

select * from renamed
