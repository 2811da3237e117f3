"""Streaming: an embedded Kafka-protocol broker, the producer, the exactly-once DuckDB sink
and the live scorer."""
