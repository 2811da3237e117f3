"""An embedded Kafka-protocol broker: librdkafka's mock cluster, reached through ctypes.

The confluent-kafka wheel bundles librdkafka, whose public (experimental) mock-cluster API
starts an in-process cluster that speaks the real Kafka protocol on loopback ports, with
consumer groups and fault injection. Any Kafka client connects to `bootstrap`; the mock does
not implement CreateTopics, so topics are created here through the C API.

Each mock partition keeps at most 5 MiB or 100,000 message sets (fixed in librdkafka's
`rd_kafka_mock_partition_init`, with no setting or API to change them) and then deletes its
oldest message sets, as retention would. That is about 13,000 shoplens events (about 400
bytes each on the wire; measured 13,100 sent one per message set, 15,300 in bulk batches)
per partition, so the broker's buffer grows with its partitions: the default of 16 holds about
200,000 events per topic. The sink records what was deleted before it read it in
`raw.sink_gaps`.
"""

from __future__ import annotations

import ctypes
import glob
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType, TracebackType

from shoplens.config import (
    EVENTS_TOPIC,
    HIGH_INTENT_TOPIC,
    RECOMMENDATIONS_TOPIC,
    TRANSACTIONS_TOPIC,
)

DEFAULT_TOPICS = (EVENTS_TOPIC, TRANSACTIONS_TOPIC, HIGH_INTENT_TOPIC, RECOMMENDATIONS_TOPIC)
# 16 partitions keep about 200,000 events per topic (see above); the sink reads them all.
DEFAULT_PARTITIONS = 16

# Kafka protocol request types (ApiKey) and error codes used for fault injection.
API_KEYS = {
    "produce": 0,
    "fetch": 1,
    "list_offsets": 2,
    "metadata": 3,
    "offset_commit": 8,
    "offset_fetch": 9,
    "find_coordinator": 10,
    "join_group": 11,
    "heartbeat": 12,
    "sync_group": 14,
}
ERRORS = {
    "transport": -195,
    "leader_not_available": 5,
    "not_leader_for_partition": 6,
    "request_timed_out": 7,
    "coordinator_not_available": 15,
    "not_coordinator": 16,
    "not_enough_replicas": 19,
}

_RD_KAFKA_PRODUCER = 0


class BrokerError(RuntimeError):
    """The embedded broker could not be started or driven."""


def _find_librdkafka() -> str:
    """Path of the librdkafka shared library bundled with the confluent-kafka wheel."""
    import confluent_kafka

    pkg = Path(confluent_kafka.__file__).resolve().parent
    candidates = sorted(glob.glob(str(pkg.parent / "confluent_kafka.libs" / "librdkafka*.so*")))
    candidates += sorted(glob.glob(str(pkg / ".dylibs" / "librdkafka*.dylib")))
    if not candidates:
        raise BrokerError(f"librdkafka not found beside confluent_kafka in {pkg.parent}")
    return candidates[0]


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(_find_librdkafka())
    vp, cp, i32, i16 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int16
    sigs: dict[str, tuple[object, list[object]]] = {
        "rd_kafka_conf_new": (vp, []),
        "rd_kafka_conf_set": (ctypes.c_int, [vp, cp, cp, cp, ctypes.c_size_t]),
        "rd_kafka_new": (vp, [ctypes.c_int, vp, cp, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [vp]),
        "rd_kafka_mock_cluster_new": (vp, [vp, ctypes.c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [vp]),
        "rd_kafka_mock_cluster_bootstraps": (cp, [vp]),
        "rd_kafka_mock_topic_create": (ctypes.c_int, [vp, cp, ctypes.c_int, ctypes.c_int]),
        "rd_kafka_mock_topic_delete": (ctypes.c_int, [vp, cp]),
        "rd_kafka_mock_partition_delete_records": (ctypes.c_int, [vp, cp, i32, ctypes.c_int64]),
        "rd_kafka_mock_broker_set_down": (ctypes.c_int, [vp, i32]),
        "rd_kafka_mock_broker_set_up": (ctypes.c_int, [vp, i32]),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [vp, i32]),
        "rd_kafka_mock_push_request_errors_array": (
            None,
            [vp, i16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)],
        ),
        "rd_kafka_err2str": (cp, [ctypes.c_int]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class EmbeddedBroker:
    """An in-process Kafka-protocol cluster with the shoplens topics.

    Use as a context manager, or call `start()` / `close()`. `bootstrap` is the address for
    clients (kafka-python needs `api_version=(2, 3)` against it).
    """

    def __init__(
        self,
        *,
        brokers: int = 1,
        partitions: int = DEFAULT_PARTITIONS,
        topics: Iterable[str] = DEFAULT_TOPICS,
    ) -> None:
        self.brokers = brokers
        self.partitions = partitions
        self.topics = tuple(topics)
        self._lib: ctypes.CDLL | None = None
        self._rk: int | None = None
        self._mc: int | None = None
        self.bootstrap = ""

    def start(self) -> EmbeddedBroker:
        """Start the cluster and create the topics; returns self."""
        lib = self._lib = _load()
        err = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        # The handle only does the cluster's bookkeeping: keep its own logging quiet.
        for key, value in (("log_level", "2"), ("client.id", "shoplens-embedded-broker")):
            if lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), err, len(err)) != 0:
                raise BrokerError(f"librdkafka config {key}: {err.value.decode()}")
        rk = lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, err, len(err))
        if not rk:
            raise BrokerError(f"cannot create librdkafka handle: {err.value.decode()}")
        self._rk = rk
        mc = lib.rd_kafka_mock_cluster_new(rk, self.brokers)
        if not mc:
            self.close()
            raise BrokerError("cannot start the librdkafka mock cluster")
        self._mc = mc
        # Consumer groups otherwise wait 3 s before their first rebalance.
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(mc, 0)
        for topic in self.topics:
            self.create_topic(topic, self.partitions)
        self.bootstrap = lib.rd_kafka_mock_cluster_bootstraps(mc).decode()
        return self

    def _cluster(self) -> tuple[ctypes.CDLL, int]:
        if self._lib is None or self._mc is None:
            raise BrokerError("the embedded broker is not running")
        return self._lib, self._mc

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            lib, _ = self._cluster()
            raise BrokerError(f"{what}: {lib.rd_kafka_err2str(code).decode()}")

    def create_topic(self, topic: str, partitions: int) -> None:
        """Create a topic with `partitions` partitions (replication factor 1)."""
        lib, mc = self._cluster()
        self._check(
            lib.rd_kafka_mock_topic_create(mc, topic.encode(), partitions, 1),
            f"create topic {topic}",
        )

    def delete_topic(self, topic: str) -> None:
        """Delete a topic and its messages (create it again with `create_topic`)."""
        lib, mc = self._cluster()
        self._check(lib.rd_kafka_mock_topic_delete(mc, topic.encode()), f"delete topic {topic}")

    def delete_records(self, topic: str, partition: int, before: int) -> None:
        """Delete a partition's messages below offset `before`: its log start moves there,
        as Kafka retention (or the mock's own size cap) does."""
        lib, mc = self._cluster()
        self._check(
            lib.rd_kafka_mock_partition_delete_records(mc, topic.encode(), partition, before),
            f"delete records of {topic}[{partition}] before {before}",
        )

    def set_down(self, broker_id: int = -1) -> None:
        """Disconnect clients and refuse new connections (-1: every broker)."""
        lib, mc = self._cluster()
        self._check(lib.rd_kafka_mock_broker_set_down(mc, broker_id), "broker down")

    def set_up(self, broker_id: int = -1) -> None:
        """Accept connections again (-1: every broker)."""
        lib, mc = self._cluster()
        self._check(lib.rd_kafka_mock_broker_set_up(mc, broker_id), "broker up")

    def push_request_errors(self, request: str, errors: Iterable[str]) -> None:
        """Fail the next requests of type `request` (see API_KEYS) with `errors` (ERRORS)."""
        lib, mc = self._cluster()
        codes = [ERRORS[e] for e in errors]
        arr = (ctypes.c_int * len(codes))(*codes)
        lib.rd_kafka_mock_push_request_errors_array(mc, API_KEYS[request], len(codes), arr)

    def close(self) -> None:
        """Stop the cluster (idempotent)."""
        if self._lib is not None:
            if self._mc:
                self._lib.rd_kafka_mock_cluster_destroy(self._mc)
            if self._rk:
                self._lib.rd_kafka_destroy(self._rk)
        self._mc = self._rk = None
        self.bootstrap = ""

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_until_signalled(broker: EmbeddedBroker, announce: Callable[[str], None]) -> None:
    """Start `broker`, announce its bootstrap address, serve until SIGINT or SIGTERM."""
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with broker:
            announce(broker.bootstrap)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
