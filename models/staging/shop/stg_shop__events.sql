-- One row per usable event: deduplicated by event_id, event types normalised, category named.
{{ shop_events_staged(source('shop', 'events')) }}
