{#-
    The category recommender's input (macro session_category_features over the sessionised
    events and the customers) at two points of each session: history_cut 'before_checkout'
    (events before the first checkout or purchase: what the live recommender sees, and the input
    of ml.session_recommendations) and 'browsing' (events before the first cart add, for the
    offline evaluation). The same macro renders the SQL the live recommender runs
    (ml.feature_definitions, feature_set session_category).
-#}
with before_checkout as (
    {{ session_category_features(ref('int_events_sessionized'), ref('stg_shop__customers')) }}
),

browsing as (
    {{ session_category_features(
        ref('int_events_sessionized'),
        ref('stg_shop__customers'),
        ['add_to_cart', 'checkout', 'purchase']
    ) }}
)

select
    'before_checkout' as history_cut,
    *
from before_checkout
union all
select
    'browsing' as history_cut,
    *
from browsing
