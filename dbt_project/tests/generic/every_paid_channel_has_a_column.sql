{#-
    mmm_weekly_input has one spend column per channel in var('mmm_paid_channels'): fails on
    every channel with spend in `spend_model` that has no column (its spend would be
    missing from the MMM).
-#}
{% test every_paid_channel_has_a_column(model, spend_model) %}
select channel, sum(spend) as spend
from {{ spend_model }}
where channel not in {{ sql_in_list(var('mmm_paid_channels')) }}
group by channel
having sum(spend) <> 0
{% endtest %}
