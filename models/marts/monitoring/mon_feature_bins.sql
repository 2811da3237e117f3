-- The deployed intent model's input features in the training window and in the latest
-- var('monitoring_drift_days') days, binned: deciles of the training values for numeric
-- features, the values themselves for categorical ones. See _monitoring__models.yml.
{%- set categorical = ['device', 'traffic_source'] %}
{#- start_month differs between a year of training and one week by construction. #}
{%- set not_numeric = categorical + ['start_month'] %}
{%- set numeric = early_intent_feature_columns() | reject('in', not_numeric) | list %}
{%- set period_columns = 'features.' ~ ((numeric + categorical) | join(', features.')) %}
{%- set drift_days = var('monitoring_drift_days') | int %}
{%- set prediction_columns = [
    ['session_id', dbt.type_string()],
    ['model_name', dbt.type_string()],
    ['split', dbt.type_string()],
] %}

{#- The table is referenced directly each time: a CTE over all of it would be copied whole,
    every column of every session, where the two periods need the training rows (at most twice
    ml_max_training_rows: the train and validation samples) and the latest days. -#}
{%- set all_features = ref('int_sessions_early_featurized') %}

with as_of as (
    select
        max(session_start) as as_of_time,
        {{ timestamp_add('day', -drift_days, 'max(session_start)') }} as window_start
    from {{ all_features }}
    where events_so_far > 0
),

training_sessions as (
    select session_id
    from {{ relation_or_empty(ref('session_predictions'), prediction_columns) }}
    where model_name = 'purchase_intent'
        and split in ('train', 'validation')
),

periods as (
    select {{ period_columns }}, 'training' as period
    from {{ all_features }} as features
    where features.events_so_far > 0
        and features.session_id in (select training_sessions.session_id from training_sessions)
    union all
    select {{ period_columns }}, 'latest' as period
    from {{ all_features }} as features
    where features.events_so_far > 0
        and features.session_start >= (select as_of.window_start from as_of)
),

-- the training values of the numeric features, one row per session and feature
training_values as (
    {%- for feature in numeric %}
    select
        '{{ feature }}' as feature,
        cast({{ feature }} as float) as feature_value
    from periods
    where period = 'training'
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

edges as (
    select
        {%- for k in range(1, 10) %}
        {{ decile_edge('feature_value', k) }} as edge_{{ k }},
        {%- endfor %}
        feature
    from training_values
    group by feature
),

-- The edges as one row, <feature>__<k>: each session is binned on every feature in one pass
-- (a row per session and feature, joined to its edges, costs several times more).
edges_wide as (
    select
        {%- for feature in numeric %}
        {%- for k in range(1, 10) %}
        max(case when feature = '{{ feature }}' then edge_{{ k }} end) as {{ feature }}__{{ k }},
        {%- endfor %}
        {%- endfor %}
        count(*) as edged_features
    from edges
),

-- Each session's decile of every numeric feature (a missing value or edge falls in the last)
-- and bin of every categorical one.
binned as (
    select
        {%- for feature in numeric %}
        case
            {%- for k in range(1, 10) %}
            when cast(periods.{{ feature }} as float) <= edges_wide.{{ feature }}__{{ k }}
                then {{ k }}
            {%- endfor %}
            else 10
        end as {{ feature }}__decile,
        {%- endfor %}
        {%- for feature in categorical %}
        coalesce(periods.{{ feature }}, 'unknown') as {{ feature }}__bin,
        {%- endfor %}
        periods.period
    from periods
    cross join edges_wide
),

counts as (
    {%- for feature in numeric %}
    {%- set decile_text = 'cast(' ~ feature ~ '__decile as ' ~ dbt.type_string() ~ ')' %}
    select
        '{{ feature }}' as feature,
        'numeric' as feature_kind,
        {{ dbt.concat(["'decile '", decile_text]) }} as bin,
        {{ feature }}__decile as bin_order,
        {{ sum_int("case when period = 'training' then 1 else 0 end") }} as training_sessions,
        {{ sum_int("case when period = 'latest' then 1 else 0 end") }} as latest_sessions
    from binned
    group by {{ feature }}__decile
    union all
    {%- endfor %}
    {%- for feature in categorical %}
    select
        '{{ feature }}' as feature,
        'categorical' as feature_kind,
        {{ feature }}__bin as bin,
        0 as bin_order,
        {{ sum_int("case when period = 'training' then 1 else 0 end") }} as training_sessions,
        {{ sum_int("case when period = 'latest' then 1 else 0 end") }} as latest_sessions
    from binned
    group by {{ feature }}__bin
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
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
