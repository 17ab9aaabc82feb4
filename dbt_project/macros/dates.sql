{#- Calendar helpers: weeks start on Monday (docs/contracts.md §5), timestamps are UTC. -#}

{#- Monday of the week holding `date_expr`, as a date. -#}
{% macro week_start(date_expr) -%}
    {{ return(adapter.dispatch('week_start', 'triangulate')(date_expr)) }}
{%- endmacro %}

{% macro default__week_start(date_expr) -%}
    {#- DuckDB, PostgreSQL and Snowflake (default WEEK_START) truncate weeks to Monday. -#}
    cast({{ dbt.date_trunc('week', date_expr) }} as date)
{%- endmacro %}

{% macro bigquery__week_start(date_expr) -%}
    date_trunc(cast({{ date_expr }} as date), isoweek)
{%- endmacro %}

{#- ISO-8601 text ('2024-03-01T12:00:00.123Z', '...+02:00') -> UTC timestamp without time zone. -#}
{% macro utc_timestamp_from_iso(expr) -%}
    {{ return(adapter.dispatch('utc_timestamp_from_iso', 'triangulate')(expr)) }}
{%- endmacro %}

{% macro default__utc_timestamp_from_iso(expr) -%}
    cast(cast({{ expr }} as timestamp with time zone) at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro spark__utc_timestamp_from_iso(expr) -%}
    {#- Spark parses ISO-8601 text with a zone (Z, +02:00) to an instant, read in the session
        zone: the local warehouse and dbt's profile pin it to UTC (spark_settings.spark_conf). -#}
    cast({{ expr }} as timestamp)
{%- endmacro %}

{#- Unix epoch seconds (text or number) -> UTC timestamp without time zone. -#}
{% macro timestamp_from_unix_seconds(expr) -%}
    {{ dbt.dateadd('second', 'cast(' ~ expr ~ ' as bigint)', "cast('1970-01-01 00:00:00' as timestamp)") }}
{%- endmacro %}

{#- Rows 0 .. n-1 in column `generated_number`: a portable numbers table (spines, spreading). -#}
{% macro numbers(n) -%}
    {%- set digits = (n - 1) | string | length -%}
    select
        {% for i in range(digits) -%}
        d{{ i }}.digit * {{ 10 ** i }}{{ ' + ' if not loop.last }}
        {%- endfor %} as generated_number
    from
        {% for i in range(digits) -%}
        (
            select 0 as digit union all select 1 union all select 2 union all select 3 union all select 4
            union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
        ) as d{{ i }}{{ ',' if not loop.last }}
        {% endfor %}
    where {% for i in range(digits) -%}
        d{{ i }}.digit * {{ 10 ** i }}{{ ' + ' if not loop.last }}
        {%- endfor %} < {{ n }}
{%- endmacro %}
