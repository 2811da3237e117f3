-- The session funnel by day: how many sessions reached each step, counted once per session (a
-- session browsing three categories is one session here; mart_funnel_daily has the category
-- breakdown). Steps are cumulative: a session counts at its furthest step and at every step
-- before it, so each step holds at most the sessions of the one above (REES46 data has
-- purchases without a cart event and no checkout events: such a purchase counts as having
-- passed the cart and checkout steps). A session counts on the date it started.
with sessions as (
    select
        session_date,
        coalesce(purchase_made, false) as bought,
        coalesce(checkout_reached, false) or coalesce(purchase_made, false) as checked_out,
        coalesce(cart_additions, 0) > 0
        or coalesce(checkout_reached, false)
        or coalesce(purchase_made, false) as carted,
        coalesce(product_views, 0) > 0
        or coalesce(cart_additions, 0) > 0
        or coalesce(checkout_reached, false)
        or coalesce(purchase_made, false) as viewed
    from {{ ref('int_sessions_aggregated') }}
)

select
    session_date,
    count(*) as sessions,
    count(case when viewed then 1 end) as viewing_sessions,
    count(case when carted then 1 end) as cart_sessions,
    count(case when checked_out then 1 end) as checkout_sessions,
    count(case when bought then 1 end) as purchase_sessions
from sessions
group by session_date
