-- Sessions scored live whose outcome is now known: one row per session with its last live
-- score and what happened. See _monitoring__models.yml.
{%- set inactivity_minutes = var('session_inactivity_minutes') | int %}

with scores as (
    select
        session_id,
        model_name,
        model_version,
        events_so_far,
        probability,
        threshold,
        row_number() over (
            partition by session_id order by scored_at desc, events_so_far desc
        ) as recency,
        count(*) over (partition by session_id) as scorings
    from {{ ref('stg_live__session_scores') }}
),

sessions as (
    select session_id, customer_id, session_date, session_start, session_end, purchase_made
    from {{ ref('fct_sessions') }}
),

as_of as (
    select
        max(session_end) as as_of_time,
        {{ timestamp_add('minute', -inactivity_minutes, 'max(session_end)') }} as ended_before
    from sessions
)

select
    scores.session_id,
    sessions.customer_id,
    sessions.session_date,
    sessions.session_start,
    sessions.session_end,
    scores.model_name,
    scores.model_version,
    scores.scorings,
    scores.events_so_far,
    scores.probability,
    scores.threshold,
    scores.probability >= scores.threshold as predicted,
    sessions.purchase_made,
    case when sessions.purchase_made then 1 else 0 end as outcome
from scores
inner join sessions
    on sessions.session_id = scores.session_id
cross join as_of
where scores.recency = 1
    and (sessions.purchase_made or sessions.session_end < as_of.ended_before)
