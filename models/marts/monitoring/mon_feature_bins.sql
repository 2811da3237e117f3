-- The deployed intent model's input features in the training window and in the latest
-- var('monitoring_drift_days') days, binned: deciles of the training values for numeric
-- features, the values themselves for categorical ones. See _monitoring__models.yml.
{%- set categorical = ['device', 'traffic_source'] %}
{#- start_month differs between a year of training and one week by construction. #}
{%- set not_numeric = categorical + ['start_month'] %}
{%- set numeric = early_intent_feature_columns() | reject('in', not_numeric) | list %}
{%- set drift_days = var('monitoring_drift_days') | int %}
{%- set prediction_columns = [
    ['session_id', dbt.type_string()],
    ['model_name', dbt.type_string()],
    ['split', dbt.type_string()],
] %}

with features as (
    select * from {{ ref('int_sessions_early_featurized') }}
    where events_so_far > 0
),

as_of as (
    select
        max(session_start) as as_of_time,
        {{ timestamp_add('day', -drift_days, 'max(session_start)') }} as window_start
    from features
),

training_sessions as (
    select session_id
    from {{ relation_or_empty(ref('session_predictions'), prediction_columns) }}
    where model_name = 'purchase_intent'
        and split in ('train', 'validation')
),

periods as (
    select features.*, 'training' as period
    from features
    inner join training_sessions
        on training_sessions.session_id = features.session_id
    union all
    select features.*, 'latest' as period
    from features
    cross join as_of
    where features.session_start >= as_of.window_start
),

numeric_values as (
    {%- for feature in numeric %}
    select
        '{{ feature }}' as feature,
        period,
        cast({{ feature }} as float) as feature_value
    from periods
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

edges as (
    select
        feature,
        percentile_cont(0.1) within group (order by feature_value) as edge_1,
        percentile_cont(0.2) within group (order by feature_value) as edge_2,
        percentile_cont(0.3) within group (order by feature_value) as edge_3,
        percentile_cont(0.4) within group (order by feature_value) as edge_4,
        percentile_cont(0.5) within group (order by feature_value) as edge_5,
        percentile_cont(0.6) within group (order by feature_value) as edge_6,
        percentile_cont(0.7) within group (order by feature_value) as edge_7,
        percentile_cont(0.8) within group (order by feature_value) as edge_8,
        percentile_cont(0.9) within group (order by feature_value) as edge_9
    from numeric_values
    where period = 'training'
    group by feature
),

numeric_bins as (
    select
        numeric_values.feature,
        numeric_values.period,
        case
            {%- for k in range(1, 10) %}
            when numeric_values.feature_value <= edges.edge_{{ k }} then {{ k }}
            {%- endfor %}
            else 10
        end as decile
    from numeric_values
    inner join edges
        on edges.feature = numeric_values.feature
),

binned as (
    select
        feature,
        'numeric' as feature_kind,
        {{ dbt.concat(["'decile '", "cast(decile as " ~ dbt.type_string() ~ ")"]) }} as bin,
        decile as bin_order,
        period
    from numeric_bins
    {%- for feature in categorical %}
    union all
    select
        '{{ feature }}' as feature,
        'categorical' as feature_kind,
        coalesce({{ feature }}, 'unknown') as bin,
        0 as bin_order,
        period
    from periods
    {%- endfor %}
),

counts as (
    select
        feature,
        feature_kind,
        bin,
        bin_order,
        {{ sum_int("case when period = 'training' then 1 else 0 end") }} as training_sessions,
        {{ sum_int("case when period = 'latest' then 1 else 0 end") }} as latest_sessions
    from binned
    group by feature, feature_kind, bin, bin_order
),

totals as (
    select
        feature,
        cast(sum(training_sessions) as double) as training_total,
        cast(sum(latest_sessions) as double) as latest_total
    from counts
    group by feature
),

shares as (
    select
        counts.*,
        -- floored: a bin empty in one period would make the index infinite
        greatest(counts.training_sessions / totals.training_total, 0.0001) as training_share,
        greatest(counts.latest_sessions / totals.latest_total, 0.0001) as latest_share
    from counts
    inner join totals
        on totals.feature = counts.feature
    where totals.training_total > 0
        and totals.latest_total > 0
)

select
    shares.feature,
    shares.feature_kind,
    shares.bin,
    shares.bin_order,
    cast(case shares.bin_order
        {%- for k in range(1, 10) %}
        when {{ k }} then edges.edge_{{ k }}
        {%- endfor %}
    end as float) as bin_upper_edge,
    shares.training_sessions,
    shares.latest_sessions,
    shares.training_share,
    shares.latest_share,
    (shares.latest_share - shares.training_share)
    * ln(shares.latest_share / shares.training_share) as psi_contribution,
    as_of.window_start,
    as_of.as_of_time
from shares
cross join as_of
left join edges
    on edges.feature = shares.feature
