-- One row per usable event: deduplicated by event_id, event types normalised, category named.
-- A view over the usable rows of stg_shop__events_classified, where the ranking is stored.
{{ shop_events_usable(ref('stg_shop__events_classified')) }}
