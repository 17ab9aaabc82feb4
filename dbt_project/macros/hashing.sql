{#-
    Emails never leave staging in clear: `hashed_email(expr)` is the lowercase hex SHA-256
    of lower(trim(email)), NULL for NULL or blank. The same person's email hashes to the
    same key in every source (Stripe, Shopify, Segment traits), which is how payments join
    to people. A value already redacted by `triangulate privacy retain` (`sha256:<hex>`,
    docs/privacy.md) is that hash itself, so redacted and clear rows still join.
-#}
{% macro hashed_email(expr) -%}
    case when {{ expr }} like 'sha256:%' then substr({{ expr }}, 8)
    else {{ triangulate.sha256_hex("lower(trim(" ~ expr ~ "))") }} end
{%- endmacro %}

{% macro sha256_hex(expr) -%}
    {{ return(adapter.dispatch('sha256_hex', 'triangulate')(expr)) }}
{%- endmacro %}

{% macro duckdb__sha256_hex(expr) -%}
    case when nullif({{ expr }}, '') is not null then sha256({{ expr }}) end
{%- endmacro %}

{% macro postgres__sha256_hex(expr) -%}
    case when nullif({{ expr }}, '') is not null then encode(sha256(convert_to({{ expr }}, 'UTF8')), 'hex') end
{%- endmacro %}

{% macro snowflake__sha256_hex(expr) -%}
    case when nullif({{ expr }}, '') is not null then sha2({{ expr }}, 256) end
{%- endmacro %}

{% macro bigquery__sha256_hex(expr) -%}
    case when nullif({{ expr }}, '') is not null then to_hex(sha256({{ expr }})) end
{%- endmacro %}

{% macro spark__sha256_hex(expr) -%}
    {#- Spark and Databricks: sha2 gives lowercase hex of the UTF-8 bytes. -#}
    case when nullif({{ expr }}, '') is not null then sha2({{ expr }}, 256) end
{%- endmacro %}

{% macro default__sha256_hex(expr) -%}
    {{ exceptions.raise_compiler_error("sha256_hex: no SHA-256 macro for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}
