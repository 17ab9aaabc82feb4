{#-
    Money helpers. Payment providers send integer minor units (cents); marts hold money in
    major units of the reporting currency as numeric(28, 6).
-#}

{#- Minor units per major unit of an ISO 4217 currency (1 for zero-decimal currencies). -#}
{% macro minor_units_per_major(currency_expr) -%}
    case when upper({{ currency_expr }}) in (
        'BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'
    ) then 1 when upper({{ currency_expr }}) in ('BHD', 'JOD', 'KWD', 'OMR', 'TND') then 1000 else 100 end
{%- endmacro %}

{#-
    An integer amount of minor units as an exact decimal of major units: decimal(19, 3)
    (minor units are cents, or thousandths, or the unit itself). No division: DuckDB divides
    decimals in floating point.
-#}
{% macro exact_major_units(minor_expr, currency_expr) -%}
    cast(cast({{ minor_expr }} as decimal(19, 0)) * cast(case when upper({{ currency_expr }}) in (
        'BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'
    ) then 1 when upper({{ currency_expr }}) in ('BHD', 'JOD', 'KWD', 'OMR', 'TND') then 0.001 else 0.01 end
    as decimal(4, 3)) as decimal(19, 3))
{%- endmacro %}

{#-
    An FX rate (a double) as decimal(18, 12), the factor money is multiplied by. An amount
    of exact_major_units() times it is decimal(37, 15) on DuckDB and decimal(38, 15) on
    Spark: exact, with no scale lost, so to_money() rounds the exact product once (half
    away from zero on every engine).
-#}
{% macro fx_decimal(rate_expr) -%}cast({{ rate_expr }} as decimal(18, 12)){%- endmacro %}

{#- The column type of money in marts: numeric(28, 6); Spark spells it decimal(28, 6). -#}
{% macro money_type() -%}
    {{- return(adapter.dispatch('money_type', 'triangulate')()) -}}
{%- endmacro %}

{% macro default__money_type() -%}numeric(28, 6){%- endmacro %}

{% macro spark__money_type() -%}decimal(28, 6){%- endmacro %}

{#- Cast to the mart money type. -#}
{% macro to_money(expr) -%}cast({{ expr }} as {{ triangulate.money_type() }}){%- endmacro %}

{#-
    The reporting currency, the one place it is normalized: var('reporting_currency')
    (env TRIANGULATE_CURRENCY, default USD), trimmed and upper-cased, so `eur` joins the FX
    rates (stg_reference__fx_rates upper-cases their codes). Anything but three letters fails
    the build. marts.reporting_currency records the result with the data it converted.
-#}
{% macro reporting_currency() -%}
    {%- set code = (var('reporting_currency') | string | trim | upper) -%}
    {%- if not modules.re.fullmatch('[A-Z]{3}', code) -%}
        {{ exceptions.raise_compiler_error(
            "reporting currency '" ~ var('reporting_currency') ~ "' (TRIANGULATE_CURRENCY) is not "
            ~ "an ISO 4217 code of three letters, e.g. USD or EUR") }}
    {%- endif -%}
    {{ return(code) }}
{%- endmacro %}
