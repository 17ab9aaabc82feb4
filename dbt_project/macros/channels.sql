{#-
    The channel registry: var('channel_registry') in dbt_project.yml, one entry per channel
    ({name, paid, click_tracked}). Models and tests read channel names through these macros
    only (Python reads the same var through triangulate.channels).
-#}

{#- Every registry entry, checked: a malformed entry fails the compile with its position. -#}
{% macro channel_registry() -%}
    {%- set entries = var('channel_registry') -%}
    {%- if entries is string or entries is not iterable or entries | length == 0 -%}
        {{ exceptions.raise_compiler_error("var('channel_registry') must be a non-empty list of {name, paid, click_tracked}") }}
    {%- endif -%}
    {%- for entry in entries -%}
        {%- if entry is not mapping or entry.name is not string
              or entry.paid not in [true, false] or entry.click_tracked not in [true, false] -%}
            {{ exceptions.raise_compiler_error("var('channel_registry') entry " ~ loop.index ~ " (" ~ entry ~ ") must be {name: <text>, paid: true|false, click_tracked: true|false}") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(entries) }}
{%- endmacro %}

{#- Names of every channel (accepted_values of channel columns). -#}
{% macro channel_names() -%}
    {{ return(channel_registry() | map(attribute='name') | list) }}
{%- endmacro %}

{#- Names of the paid channels: one spend_<name> column each in mmm_weekly_input. -#}
{% macro paid_channel_names() -%}
    {{ return(channel_registry() | selectattr('paid') | map(attribute='name') | list) }}
{%- endmacro %}
