{#-
    Rows of `relation` with session_start_time: within each `partition_by` group, in order of
    event_time (then event_id), a gap of more than var('session_inactivity_minutes') since the
    group's previous event starts a new session, whose start is that event's time. Used for
    events without a session id (per customer) and for events with one (per session id and
    customer), so that no session runs on across long silences.
-#}
{% macro split_by_inactivity(relation, partition_by) %}
    select
        *,
        max(started_session_at) over (
            partition by {{ partition_by }} order by event_time, event_id
            rows between unbounded preceding and current row
        ) as session_start_time
    from (
        select
            *,
            case
                when previous_event_time is null
                    or {{ seconds_between('previous_event_time', 'event_time') }}
                        > {{ var('session_inactivity_minutes') }} * 60
                    then event_time
            end as started_session_at
        from (
            select
                *,
                lag(event_time) over (
                    partition by {{ partition_by }} order by event_time, event_id
                ) as previous_event_time
            from {{ relation }}
        ) as gaps
    ) as starts
{% endmacro %}
