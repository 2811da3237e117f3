-- The deployed purchase-intent model on the sessions it scored live, per session day, once
-- their outcome is known (mon_live_outcomes). See _monitoring__models.yml.
{%- set prediction_columns = [
    ['session_id', dbt.type_string()],
    ['model_name', dbt.type_string()],
    ['split', dbt.type_string()],
    ['probability', 'double'],
    ['threshold', 'double'],
] %}

with outcomes as (
    select session_date, probability, threshold, outcome
    from {{ ref('mon_live_outcomes') }}
),

-- ROC AUC as the Mann-Whitney statistic: mean rank of the buyers, ties at their mean rank.
ranked as (
    select
        session_date,
        outcome,
        rank() over (partition by session_date order by probability) as low_rank,
        count(*) over (partition by session_date, probability) as tied
    from outcomes
),

rank_sums as (
    select
        session_date,
        sum(case when outcome = 1 then low_rank + (tied - 1) / 2.0 end) as positive_rank_sum
    from ranked
    group by session_date
),

-- PR AUC as average precision: over the distinct scores from the highest down, the precision
-- at each score weighted by the share of buyers it adds.
by_score as (
    select session_date, probability, sum(outcome) as positives_here, count(*) as sessions_here
    from outcomes
    group by session_date, probability
),

cumulative as (
    select
        session_date,
        positives_here,
        sum(positives_here) over (
            partition by session_date order by probability desc
            rows between unbounded preceding and current row
        ) as positives_above,
        sum(sessions_here) over (
            partition by session_date order by probability desc
            rows between unbounded preceding and current row
        ) as sessions_above
    from by_score
),

precision_sums as (
    select
        session_date,
        sum(cast(positives_here as double) * positives_above / sessions_above) as weighted_precision
    from cumulative
    group by session_date
),

daily as (
    select
        session_date,
        count(*) as scored_sessions,
        {{ sum_int('outcome') }} as purchases,
        avg(probability) as mean_probability,
        avg((probability - outcome) * (probability - outcome)) as brier,
        sum(case when probability >= threshold then 1 else 0 end) as predicted_positive,
        sum(case when probability >= threshold then outcome else 0 end) as true_positive
    from outcomes
    group by session_date
),

-- The same share on the rows the deployed model was trained on (ml.session_predictions).
training as (
    select avg(case when probability >= threshold then 1 else 0 end) as share_above
    from {{ relation_or_empty(ref('session_predictions'), prediction_columns) }}
    where model_name = 'purchase_intent'
        and split in ('train', 'validation')
)

select
    daily.session_date,
    daily.scored_sessions,
    daily.purchases,
    cast(daily.purchases as double) / daily.scored_sessions as purchase_rate,
    daily.mean_probability,
    case
        when daily.purchases > 0 and daily.purchases < daily.scored_sessions
            then (
                rank_sums.positive_rank_sum
                - cast(daily.purchases as double) * (daily.purchases + 1) / 2
            ) / (daily.purchases * (daily.scored_sessions - daily.purchases))
    end as roc_auc,
    case
        when daily.purchases > 0 then precision_sums.weighted_precision / daily.purchases
    end as pr_auc,
    cast(daily.true_positive as double) / nullif(daily.predicted_positive, 0)
        as precision_at_threshold,
    cast(daily.true_positive as double) / nullif(daily.purchases, 0) as recall_at_threshold,
    daily.brier,
    cast(daily.predicted_positive as double) / daily.scored_sessions as share_above_threshold,
    training.share_above as training_share_above_threshold
from daily
inner join rank_sums
    on rank_sums.session_date = daily.session_date
inner join precision_sums
    on precision_sums.session_date = daily.session_date
cross join training
