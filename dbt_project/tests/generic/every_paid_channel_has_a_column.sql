{#-
    mmm_weekly_input has one spend column per paid channel of the channel registry
    (paid_channel_names()): fails on every channel with spend in `spend_model` that is not
    a paid channel (its spend would be missing from the MMM).
-#}
{% test every_paid_channel_has_a_column(model, spend_model) %}
select channel, sum(spend) as spend
from {{ spend_model }}
where channel not in {{ sql_in_list(paid_channel_names()) }}
group by channel
having sum(spend) <> 0
{% endtest %}
