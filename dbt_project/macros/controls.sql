{#-
    The controls (non-media drivers) of marts.mmm_weekly_input: every control name landed in
    landing/controls/ (raw.controls), lower-cased, in the order the names first arrived (load
    time, file, line), so the columns keep their order as later files add controls. A brand
    has whatever controls it lands, or none: there is no list of control names anywhere
    else (the MMM fits the control_<name> columns it finds, triangulate/mmm/mmm.yaml).

    A name becomes the column control_<name>: anything but a lower-case identifier fails the
    build, naming the name and its first file. [] while dbt parses, and before the first
    load (no raw.controls yet: `dbt compile` on an empty warehouse).
-#}
{% macro control_names() -%}
    {%- set controls = source('controls', 'controls') -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- if adapter.get_relation(controls.database, controls.schema, controls.identifier) is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select control_name, min(_file) as first_file
        from (
            select
                lower(trim(name)) as control_name,
                _file,
                row_number() over (order by _loaded_at, _file, _line) as arrival
            from {{ controls }}
            where nullif(trim(name), '') is not null
        ) as named
        group by control_name
        order by min(arrival)
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- set names = [] -%}
    {%- for row in rows -%}
        {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', row[0]) -%}
            {{ exceptions.raise_compiler_error(
                "landing/" ~ row[1] ~ ": control name '" ~ row[0] ~ "' cannot be a column name "
                ~ "(control_<name> of marts.mmm_weekly_input): use lower-case letters, digits "
                ~ "and _, starting with a letter, e.g. price_index") }}
        {%- endif -%}
        {%- do names.append(row[0]) -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}
