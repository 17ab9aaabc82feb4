{#-
    Reconciliation: sum(`measure`) of the model equals sum(`compare_measure`) of
    `compare_model`, per group, within `tolerance` (absolute, in the column's unit).

    Fails on each group whose totals differ, or that exists on one side only (unless
    `missing_is_zero`: then a group on one side only counts as 0 on the other, for a
    zero-filled model whose gaps in the sources are another check's job). `group_by` and
    `compare_group_by` are lists of expressions lined up pairwise; `where` and
    `compare_where` filter each side (e.g. one platform of a mart against its staging model).
-#}
{% test sums_match(model, measure, compare_model, compare_measure, group_by=[], compare_group_by=none,
                   where='1 = 1', compare_where='1 = 1', tolerance=0.01, missing_is_zero=false) %}
{%- set compare_group_by = group_by if compare_group_by is none else compare_group_by -%}
{%- set key = group_key_text(group_by) -%}
{%- set compare_key = group_key_text(compare_group_by) -%}
with model_totals as (
    select {{ key }} as group_key, sum({{ measure }}) as total
    from {{ model }}
    where {{ where }}
    group by 1
),

compare_totals as (
    select {{ compare_key }} as group_key, sum({{ compare_measure }}) as total
    from {{ compare_model }}
    where {{ compare_where }}
    group by 1
)

select
    coalesce(m.group_key, c.group_key) as group_key,
    m.total as model_total,
    c.total as compare_total
from model_totals as m
full outer join compare_totals as c on m.group_key = c.group_key
where {% if not missing_is_zero %}m.group_key is null
    or c.group_key is null
    or {% endif %}abs(coalesce(m.total, 0) - coalesce(c.total, 0)) > {{ tolerance }}
{% endtest %}

