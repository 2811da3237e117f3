"""Kafka client settings shared by the producer, the sink and the scorer."""

from __future__ import annotations

# kafka-python 3.x first sends ApiVersions v4, which librdkafka's mock cluster answers with a
# short fallback reply the client cannot decode; 2.3 is the last setting that starts at v2.
# Real brokers (Kafka 2.3 up to 4.x) accept these request versions too, so it is pinned for
# every client against every cluster.
KAFKA_API_VERSION = (2, 3)

# Fetch settings of every kafka-python consumer here: the sink, and the benchmark's bare loop
# that measures the client's ceiling (the comparison is only fair with the same settings).
# Idle fetches return after at most 100 ms, which bounds the latency of a quiet stream.
CONSUMER_FETCH_SETTINGS = {"max_partition_fetch_bytes": 4 * 2**20, "fetch_max_wait_ms": 100}
