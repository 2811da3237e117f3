-- No leakage: early-intent features only count events before the first checkout or purchase.
-- Fails for a session whose early counts exceed its whole-session counts, or a buying session
-- whose early features saw all of its events (the purchase itself would then be included).
select
    early.session_id,
    early.events_so_far,
    sessions.events,
    sessions.purchase_made
from {{ ref('int_sessions_early_featurized') }} as early
inner join {{ ref('int_sessions_aggregated') }} as sessions
    on sessions.session_id = early.session_id
where early.events_so_far > sessions.events
    or early.cart_adds_so_far > sessions.cart_additions
    or early.product_views_so_far > sessions.product_views
    or (sessions.purchase_made and early.events_so_far >= sessions.events)
    or early.purchase_made <> sessions.purchase_made
