{#-
    Text aggregate of `measure` joined by `delimiter_text`, in the order of `order_by` (a list
    of column names), NULL measures skipped. dbt.listagg where it keeps the order (DuckDB,
    PostgreSQL, Snowflake, BigQuery); dbt-spark's listagg drops the order (collect_list has
    none), so Spark sorts the collected (keys..., measure) structs itself.
-#}
{% macro ordered_listagg(measure, delimiter_text, order_by) -%}
    {{ return(adapter.dispatch('ordered_listagg', 'triangulate')(measure, delimiter_text, order_by)) }}
{%- endmacro %}

{% macro default__ordered_listagg(measure, delimiter_text, order_by) -%}
    {{ dbt.listagg(measure, delimiter_text, 'order by ' ~ (order_by | join(', '))) }}
{%- endmacro %}

{% macro spark__ordered_listagg(measure, delimiter_text, order_by) -%}
    array_join(transform(array_sort(collect_list(named_struct(
        {%- for column in order_by %}'k{{ loop.index }}', {{ column }}, {% endfor -%}
        'measure', {{ measure }}))), item -> item.measure), {{ delimiter_text }})
{%- endmacro %}
