-- No leakage: early-intent features only count events before the first checkout or purchase.
-- Fails for a session whose early counts exceed its whole-session counts, or a buying session
-- whose early features saw all of its events (the purchase itself would then be included).
-- Checks the sessions either model wrote in its latest batch (macros/latest_batch.sql).
{% set early_features = ref('int_sessions_early_featurized') %}
{% set all_sessions = ref('int_sessions_aggregated') %}
with latest_sessions as (
    select session_id from {{ early_features }} where {{ in_latest_batch(early_features) }}
    union
    select session_id from {{ all_sessions }} where {{ in_latest_batch(all_sessions) }}
)

select
    early.session_id,
    early.events_so_far,
    sessions.events,
    sessions.purchase_made
from {{ early_features }} as early
inner join {{ all_sessions }} as sessions
    on sessions.session_id = early.session_id
where early.session_id in (select latest_sessions.session_id from latest_sessions)
    and (
        early.events_so_far > sessions.events
        or early.cart_adds_so_far > sessions.cart_additions
        or early.product_views_so_far > sessions.product_views
        or (sessions.purchase_made and early.events_so_far >= sessions.events)
        or early.purchase_made <> sessions.purchase_made
    )
