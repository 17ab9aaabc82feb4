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
