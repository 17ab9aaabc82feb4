{#-
    dbt-spark behaviour the project replaces on Spark (these macros override dbt-spark's of
    the same name: a root project's macro wins over the adapter's). DuckDB and PostgreSQL
    never call them.
-#}

{#- dbt-spark's split_part splits on a regex built from the delimiter and escapes it wrongly
    ('gclid=' becomes the invalid regex \gclid=). Spark's own split_part (3.3+) splits on the
    literal text and gives '' past the last part, as DuckDB's and PostgreSQL's do. -#}
{% macro spark__split_part(string_text, delimiter_text, part_number) -%}
    split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}

{#- Seeds: dbt-spark's session cursor pastes bindings into the SQL unescaped ('...' around
    the value; a blank cell becomes the text 'None'), so a quote in a seed cell breaks the
    insert and blank cells (which mean "any" in channel_rules) are not NULL. Write the values
    as escaped literals instead. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set batch_size = get_batch_size() -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(batch_size) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                    {%- set type = column_override.get(col_name, inferred_type) -%}
                    {%- set value = row[loop.index0] -%}
                    cast({{ triangulate.spark_literal(value) }} as {{ type }})
                    {%- if not loop.last %},{% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}

{#- A seed cell as a Spark SQL literal: null, a number, or an escaped string. -#}
{% macro spark_literal(value) -%}
    {%- if value is none -%}null
    {%- elif value is sameas true or value is sameas false -%}{{ 'true' if value else 'false' }}
    {%- elif value is number -%}{{ value }}
    {%- else -%}'{{ (value | string).replace('\\', '\\\\').replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}

{#- Contracts: the marts' yml types are the SQL standard names (varchar, double precision,
    numeric(28, 6)); Spark needs its own (string, double, decimal(28,6)) to cast the empty
    row dbt compares the model's columns with. -#}
{% macro spark__get_empty_schema_sql(columns) %}
    {%- set translated = {} -%}
    {%- for name in columns -%}
        {%- set col = columns[name] -%}
        {%- set copy = {} -%}
        {%- do copy.update(col) -%}
        {%- if col.get('data_type') is not none -%}
            {%- do copy.update({'data_type': triangulate.spark_type(col['data_type'])}) -%}
        {%- endif -%}
        {%- do translated.update({name: copy}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(translated)) }}
{% endmacro %}
