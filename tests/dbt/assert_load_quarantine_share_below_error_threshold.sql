-- Quality gate, error: a load with more than var quarantine_share_error of its raw event rows
-- quarantined fails the build (see macros/quality_gate.sql). Runs after mart_data_quality, so
-- the quality page still shows the counts.
-- depends_on: {{ ref('mart_data_quality') }}
{{ config(severity='error') }}
{{ loads_over_quarantine_share(var('quarantine_share_error')) }}
