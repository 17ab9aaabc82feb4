{#-
    Column types whose names differ between engines. Models write `double precision` and
    contracts (the marts' yml) `varchar`, `double precision`, `numeric(p, s)`, `integer`:
    the SQL standard names DuckDB and PostgreSQL take. Spark names them string, double,
    decimal(p, s), int (and needs a length for varchar), so on Spark `double_type()` says
    double and `spark_type()` translates a contract's type (spark__get_empty_schema_sql,
    macros/spark.sql).
-#}

{#- A double-precision float column type. -#}
{% macro double_type() -%}
    {{- return(adapter.dispatch('double_type', 'triangulate')()) -}}
{%- endmacro %}

{% macro default__double_type() -%}double precision{%- endmacro %}

{% macro spark__double_type() -%}double{%- endmacro %}

{#- A contract data_type (SQL standard spelling) in Spark's spelling. -#}
{% macro spark_type(data_type) -%}
    {%- set t = data_type | trim | lower -%}
    {%- set numeric = modules.re.fullmatch('(?:numeric|decimal)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)', t) -%}
    {%- if numeric -%}
        {{- return('decimal(' ~ numeric.group(1) ~ ',' ~ numeric.group(2) ~ ')') -}}
    {%- elif t in ('varchar', 'text') or t.startswith('varchar(') or t.startswith('character varying') -%}
        {{- return('string') -}}
    {%- elif t in ('double precision', 'float8') -%}
        {{- return('double') -}}
    {%- elif t in ('integer', 'int4') -%}
        {{- return('int') -}}
    {%- else -%}
        {{- return(t) -}}
    {%- endif -%}
{%- endmacro %}
