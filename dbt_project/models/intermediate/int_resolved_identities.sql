{#-
    The identity graph: which person each device (anonymousId) and each hashed email belongs to.

    - A device belongs to the first user id it was seen with: any event carrying both ids
      (identify, track after login) or an alias call (previousId -> userId). person_key is
      'user:<userId>'; devices never linked stay their own person ('anon:<anonymousId>', not
      listed here).
    - A hashed email (identify traits) belongs to the person who first identified with it;
      payments join to people through it when no Order Completed event names the order.

    One hop: aliases that merge one user id into another are not followed.
-#}

with events as (

    select * from {{ ref('stg_segment__events') }}
    where user_id is not null

),

device_links as (

    select anonymous_id, user_id, event_at, event_type as link_method
    from events
    where anonymous_id is not null

    union all

    select previous_id as anonymous_id, user_id, event_at, 'alias' as link_method
    from events
    where event_type = 'alias' and previous_id is not null

),

first_device_links as (

    select
        *,
        row_number() over (partition by anonymous_id order by event_at, user_id) as link_rank
    from device_links

),

email_links as (

    select
        email_hash,
        user_id,
        event_at,
        row_number() over (partition by email_hash order by event_at, user_id) as link_rank
    from {{ ref('stg_segment__events') }}
    where email_hash is not null and user_id is not null

),

final as (

    select
        'anonymous_id' as identifier_type,
        anonymous_id as identifier,
        {{ person_key('user_id', 'anonymous_id') }} as person_key,
        event_at as linked_at,
        link_method
    from first_device_links
    where link_rank = 1

    union all

    select
        'email_hash' as identifier_type,
        email_hash as identifier,
        {{ person_key('user_id', 'null') }} as person_key,
        event_at as linked_at,
        'identify' as link_method
    from email_links
    where link_rank = 1

)

select * from final
