-- Segment audiences: every segmented customer with the segment's name, profile and the
-- campaign the studies suggest for it (seed segment_campaigns). See _audiences__models.yml.
{%- set segment_columns = [
    ['customer_id', dbt.type_bigint()],
    ['segment_id', dbt.type_int()],
    ['segment_name', dbt.type_string()],
    ['model_version', dbt.type_int()],
] %}
{%- set profile_columns = [
    ['segment_id', dbt.type_int()],
    ['customers', dbt.type_bigint()],
    ['share', 'double'],
    ['mean_views_per_session', 'double'],
    ['mean_cart_session_rate', 'double'],
    ['mean_abandoned_session_rate', 'double'],
    ['mean_purchase_rate', 'double'],
    ['mean_seconds_per_page', 'double'],
    ['mean_pages_per_session', 'double'],
] %}

with segments as (
    select customer_id, segment_id, segment_name, model_version
    from {{ relation_or_empty(ref('customer_segments'), segment_columns) }}
),

profiles as (
    select
        segment_id,
        customers,
        share,
        mean_views_per_session,
        mean_cart_session_rate,
        mean_abandoned_session_rate,
        mean_purchase_rate,
        mean_seconds_per_page,
        mean_pages_per_session
    from {{ relation_or_empty(ref('segment_profiles'), profile_columns) }}
),

-- One description per rule name (the seed repeats it on each of the rule's feature rows).
descriptions as (
    select segment_name, min(description) as description
    from {{ ref('segment_naming_rules') }}
    group by segment_name
),

campaigns as (
    select * from {{ ref('segment_campaigns') }}
),

customers as (
    select customer_id, sessions, last_session_start, lifetime_value
    from {{ ref('dim_customers') }}
),

-- A numbered fallback segment (Regulars 2) takes the rules and campaign of its base name.
named as (
    select
        segments.customer_id,
        segments.segment_id,
        segments.segment_name,
        segments.model_version,
        descriptions.description,
        campaigns.campaign,
        campaigns.channel,
        campaigns.message,
        campaigns.study,
        campaigns.study_recommendation
    from segments
    left join descriptions
        on descriptions.segment_name = segments.segment_name
        or segments.segment_name like {{ dbt.concat(['descriptions.segment_name', "' %'"]) }}
    left join campaigns
        on campaigns.segment_name = descriptions.segment_name
)

select
    named.customer_id,
    named.segment_id,
    named.segment_name,
    named.description as segment_description,
    profiles.customers as segment_customers,
    profiles.share as segment_share,
    profiles.mean_views_per_session as segment_mean_views_per_session,
    profiles.mean_cart_session_rate as segment_mean_cart_session_rate,
    profiles.mean_abandoned_session_rate as segment_mean_abandoned_session_rate,
    profiles.mean_purchase_rate as segment_mean_purchase_rate,
    profiles.mean_seconds_per_page as segment_mean_seconds_per_page,
    profiles.mean_pages_per_session as segment_mean_pages_per_session,
    named.campaign,
    named.channel as campaign_channel,
    named.message as campaign_message,
    named.study,
    named.study_recommendation,
    customers.sessions,
    customers.last_session_start,
    customers.lifetime_value,
    named.model_version as segment_model_version
from named
left join profiles
    on profiles.segment_id = named.segment_id
left join customers
    on customers.customer_id = named.customer_id
