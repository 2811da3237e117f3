"""Why a batch write did not happen (raised by the store, handled by the writer and the sink)."""


class WarehouseBusy(Exception):
    """The warehouse file is held by another process right now."""


class WriteAbandoned(Exception):
    """Shutdown gave up waiting for the warehouse; the batch stays in Kafka."""
