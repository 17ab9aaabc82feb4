{#-
    Which person placed each order: the person of the Order Completed event whose
    properties.order_id names the order, else the person who identified with the order's
    hashed email. Orders matching neither are untracked (no row).
-#}

with orders as (

    select order_id, customer_email_hash from {{ ref('int_converted_orders') }}

),

identities as (

    select * from {{ ref('int_resolved_identities') }}

),

order_events as (

    select
        e.order_reference as order_id,
        coalesce(
            {{ person_key('e.user_id', 'null') }},
            d.person_key,
            {{ person_key('null', 'e.anonymous_id') }}
        ) as person_key,
        row_number() over (partition by e.order_reference order by e.event_at, e.message_id) as event_rank
    from {{ ref('stg_segment__events') }} as e
    left join identities as d
        on d.identifier_type = 'anonymous_id' and d.identifier = e.anonymous_id
    where e.event_name = 'Order Completed' and e.order_reference is not null

),

final as (

    select
        o.order_id,
        coalesce(ev.person_key, em.person_key) as person_key,
        case when ev.person_key is not null then 'order_event' else 'email' end as match_method
    from orders as o
    left join order_events as ev on ev.order_id = o.order_id and ev.event_rank = 1
    left join identities as em
        on em.identifier_type = 'email_hash' and em.identifier = o.customer_email_hash
    where coalesce(ev.person_key, em.person_key) is not null

)

select * from final
