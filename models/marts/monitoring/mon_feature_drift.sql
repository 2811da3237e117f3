-- Population stability index per feature of the deployed intent model: the latest
-- var('monitoring_drift_days') days against its training window (mon_feature_bins).
select
    feature,
    feature_kind,
    sum(psi_contribution) as psi,
    cast({{ var('monitoring_psi_limit') }} as double) as psi_limit,
    sum(psi_contribution) > {{ var('monitoring_psi_limit') }} as drifted,
    {{ shoplens_arg_max('bin', 'psi_contribution', 'bin') }} as most_shifted_bin,
    {{ sum_int('training_sessions') }} as training_sessions,
    {{ sum_int('latest_sessions') }} as latest_sessions,
    min(window_start) as window_start,
    max(as_of_time) as as_of_time
from {{ ref('mon_feature_bins') }}
group by feature, feature_kind
