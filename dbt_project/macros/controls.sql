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

{#-
    The mean of a week's daily control values, the same double on every engine: the exact
    decimal sum (numeric(28, 10) values; sum is decimal(38, 10) on DuckDB and Spark) over
    the count, rounded to 10 decimals. The engines divide differently (DuckDB in double,
    Spark in decimal(38, 10) rounded half up, PostgreSQL in numeric); the quotient is a
    multiple of 1e-10 / count, so a full week's (count 7) is never a tie at 10 decimals and
    lies far enough from one (>= 1.4e-11) that DuckDB's double rounds to the same 10
    decimals for values below about 1e4. The rounded value is then cast to double by the
    caller.
-#}
{% macro control_week_mean(expr) -%}
    round(sum(cast({{ expr }} as numeric(28, 10))) / count({{ expr }}), 10)
{%- endmacro %}
