{#- URL and identity helpers shared by sessions, touchpoints and the identity graph. -#}

{#- Value of query parameter `name` in `url_expr`, NULL when absent or empty (portable split_part). -#}
{% macro url_parameter(url_expr, name) -%}
    nullif({{ dbt.split_part(dbt.split_part(url_expr, "'" ~ name ~ "='", 2), "'&'", 1) }}, '')
{%- endmacro %}

{#- Host of a URL ('https://www.google.com/search?q=x' -> 'www.google.com'), lowercased. -#}
{% macro url_host(url_expr) -%}
    nullif(lower({{ dbt.split_part(dbt.split_part(dbt.split_part(url_expr, "'://'", 2), "'/'", 1), "'?'", 1) }}), '')
{%- endmacro %}

{#-
    The person a device or user belongs to: 'user:<userId>' once the device is linked to a
    user id (identify, alias, or any event carrying both ids), else 'anon:<anonymousId>'.
-#}
{% macro person_key(user_id_expr, anonymous_id_expr) -%}
    coalesce({{ dbt.concat(["'user:'", user_id_expr]) }}, {{ dbt.concat(["'anon:'", anonymous_id_expr]) }})
{%- endmacro %}

{#-
    Null-safe text key of the inputs the channel rules look at; the mapping model and its
    consumers join on it (one definition, so the join cannot drift).
-#}
{% macro channel_mapping_key(platform, campaign, source, medium, referrer_host) -%}
    {{ dbt.concat([
        "coalesce(lower(" ~ platform ~ "), '')", "'|'",
        "coalesce(lower(" ~ campaign ~ "), '')", "'|'",
        "coalesce(lower(" ~ source ~ "), '')", "'|'",
        "coalesce(lower(" ~ medium ~ "), '')", "'|'",
        "coalesce(lower(" ~ referrer_host ~ "), '')"
    ]) }}
{%- endmacro %}

{#- SQL list literal of strings: ['a', 'b'] -> ('a', 'b'). -#}
{% macro sql_in_list(values) -%}
    ({%- for v in values -%}'{{ v | replace("'", "''") }}'{{ ', ' if not loop.last }}{%- endfor -%})
{%- endmacro %}
