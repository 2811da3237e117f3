-- One row per live scoring of an in-progress session (live.session_scores, written by the live
-- scorer). Empty until the scorer has scored a session: the table does not exist before.
{%- set columns = [
    ['scored_at', dbt.type_timestamp()],
    ['session_id', dbt.type_string()],
    ['customer_id', dbt.type_bigint()],
    ['model_name', dbt.type_string()],
    ['model_version', dbt.type_int()],
    ['events_so_far', dbt.type_bigint()],
    ['last_event_id', dbt.type_string()],
    ['last_event_time', dbt.type_timestamp()],
    ['probability', 'double'],
    ['threshold', 'double'],
    ['high_intent', dbt.type_boolean()],
] %}

with source as (
    select * from {{ relation_or_empty(source('live', 'session_scores'), columns) }}
)

select
    scored_at,
    session_id,
    customer_id,
    model_name,
    model_version,
    events_so_far,
    last_event_id,
    last_event_time,
    probability,
    threshold,
    high_intent
from source
where session_id is not null
