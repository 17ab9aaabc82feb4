{#-
    Fails on every row where `expression` is not true (e.g. net_revenue = gross_revenue -
    refunded). Under a column, the expression continues the column: `expression: "> 0"`.
-#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({{ column_name ~ ' ' if column_name else '' }}{{ expression }})
{% endtest %}
