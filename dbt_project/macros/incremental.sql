{#-
    How the incremental models replace rows, per engine (dbt_project/README.md, Incremental
    models). DuckDB and PostgreSQL use delete+insert on the model's unique key. dbt-spark
    rejects delete+insert, and its `merge` needs Delta, Iceberg or Hudi tables; the local
    Spark warehouse has plain Parquet tables, which only append or overwrite (an overwrite
    cannot read the table it replaces). So on Spark:

    - the event models (stg_stripe__events, stg_segment__events; one row per event id)
      append the events whose id is not loaded yet (`new_keys_only`): the first delivery
      of an event is kept, as a full refresh keeps it;
    - the per-device models (int_sessionized_visits, int_unioned_touches: every row of a
      device that received new events is recomputed) are tables rebuilt each run, which
      gives the rows a full refresh gives.

    On Databricks (Delta) the same macros can return `merge` / keep `incremental`: add a
    databricks__ implementation.
-#}

{#- incremental_strategy of the event models (unique key: the event id). -#}
{% macro event_incremental_strategy() -%}
    {{ return(adapter.dispatch('event_incremental_strategy', 'triangulate')()) }}
{%- endmacro %}

{% macro default__event_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__event_incremental_strategy() -%}
    {{ return('append') }}
{%- endmacro %}

{#- A filter (`and ...`) keeping the new rows whose `key` the model does not hold yet, where
    the strategy appends; nothing where delete+insert replaces the old copies. Only inside
    `{% if is_incremental() %}`. -#}
{% macro new_keys_only(key) -%}
    {{ return(adapter.dispatch('new_keys_only', 'triangulate')(key)) }}
{%- endmacro %}

{% macro default__new_keys_only(key) -%}{%- endmacro %}

{% macro spark__new_keys_only(key) -%}
    and {{ key }} not in (select {{ key }} from {{ this }} where {{ key }} is not null)
{%- endmacro %}

{#- materialized of the per-device models: incremental with delete+insert on the device, or
    a table rebuilt each run where delete+insert is not available. -#}
{% macro device_materialization() -%}
    {{ return(adapter.dispatch('device_materialization', 'triangulate')()) }}
{%- endmacro %}

{% macro default__device_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__device_materialization() -%}
    {{ return('table') }}
{%- endmacro %}
