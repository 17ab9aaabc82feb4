{#-
    Text at a path inside a JSON document, NULL when absent (JSON null included).

    `column` holds JSON (a JSON column or text that parses as JSON); `path` is dotted keys
    with integer array indexes, e.g. 'data.object.metadata.order_id' or
    'transactions.0.amount'. One macro per warehouse: DuckDB's json_extract_string with a
    JSONPath, PostgreSQL's #>> operator on jsonb, Spark's get_json_object on JSON text.
-#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'triangulate')(column, path)) }}
{%- endmacro %}

{% macro _json_path_parts(path) -%}
    {%- set parts = [] -%}
    {%- for part in path.split('.') -%}
        {%- do parts.append(part) -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    {%- set ns = namespace(jsonpath='$') -%}
    {%- for part in triangulate._json_path_parts(path) -%}
        {%- if part.isdigit() -%}
            {%- set ns.jsonpath = ns.jsonpath ~ '[' ~ part ~ ']' -%}
        {%- else -%}
            {%- set ns.jsonpath = ns.jsonpath ~ '."' ~ part ~ '"' -%}
        {%- endif -%}
    {%- endfor -%}
    json_extract_string({{ column }}, '{{ ns.jsonpath }}')
{%- endmacro %}

{% macro postgres__json_text(column, path) -%}
    (cast({{ column }} as jsonb) #>> '{ {{- triangulate._json_path_parts(path) | join(',') -}} }')
{%- endmacro %}

{% macro spark__json_text(column, path) -%}
    {#- Spark and Databricks hold JSON as text (raw.* payload columns are strings there);
        get_json_object takes a JSONPath, keys in brackets so any key name works. A JSON
        null gives NULL, a nested object or array its JSON text, as DuckDB's. -#}
    {%- set ns = namespace(jsonpath='$') -%}
    {%- for part in triangulate._json_path_parts(path) -%}
        {%- if part.isdigit() -%}
            {%- set ns.jsonpath = ns.jsonpath ~ '[' ~ part ~ ']' -%}
        {%- else -%}
            {%- set ns.jsonpath = ns.jsonpath ~ "['" ~ part ~ "']" -%}
        {%- endif -%}
    {%- endfor -%}
    get_json_object({{ column }}, "{{ ns.jsonpath }}")
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    {{ exceptions.raise_compiler_error(
        "json_text: no JSON extraction macro for adapter '" ~ adapter.type() ~ "'; "
        ~ "add " ~ adapter.type() ~ "__json_text in dbt_project/macros/json_text.sql") }}
{%- endmacro %}
