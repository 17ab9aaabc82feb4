{#- Schemas are exactly raw, staging, intermediate, marts, measurement (docs/contracts.md §5):
    a model's custom schema is used as is, not prefixed with the target schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
