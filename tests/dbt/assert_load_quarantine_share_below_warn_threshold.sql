-- Quality gate, warning: a load with more than var quarantine_share_warn of its raw event rows
-- quarantined (see macros/quality_gate.sql). Runs after mart_data_quality, which counts them.
-- depends_on: {{ ref('mart_data_quality') }}
{{ config(severity='warn') }}
{{ loads_over_quarantine_share(var('quarantine_share_warn')) }}
