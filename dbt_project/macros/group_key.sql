{#- One text key from a list of group expressions ('all' when there are none). -#}
{% macro group_key_text(expressions) -%}
    {%- if not expressions -%}
        'all'
    {%- else -%}
        {%- set parts = [] -%}
        {%- for e in expressions -%}
            {%- do parts.append("coalesce(cast(" ~ e ~ " as " ~ dbt.type_string() ~ "), '')") -%}
            {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- endfor -%}
        {{ dbt.concat(parts) }}
    {%- endif -%}
{%- endmacro %}
