"""The Flink job's runtime properties: the property group's name, its keys and defaults, the consumer groups it
reads as, and the line it prints when it runs. One typed module that flink_sql/main.py (shipped beside it in the
application zip, as contract.py is) and the Python side (the CDK app, the local pipeline) import alike."""

from __future__ import annotations

from dataclasses import dataclass

PROPERTY_GROUP = "fraudstream"
READY_MARKER = "features job running"
# How the managed application starts and restarts (the stack's RunConfiguration, applied on an update of a running
# application, and StartApplication's in the stack's custom resource): from its latest snapshot (none on a new
# stack), all of it. With non-restored state allowed, a job whose SQL changed would start from a snapshot none of
# whose state maps (operator ids follow the whole graph: a change to the ticks alone left all 39 operators' state
# unmapped, measured locally) with empty windows and no Kafka offsets, and score on wrong features without a word.
# Refused, Flink does not start from it (docs/streaming.md, "Changing the job's SQL", says what the deploy does).
RUN_CONFIGURATION = {"ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"},
                     "FlinkRunConfiguration": {"AllowNonRestoredState": False}}
# The keys of the property group, one name each.
BOOTSTRAP_SERVERS = "bootstrap.servers"
TRANSACTIONS_TOPIC = "transactions.topic"
FEATURES_TOPIC = "features.topic"
INVALID_TOPIC = "invalid.topic"
CONSUMER_GROUP = "consumer.group"
MAX_OUT_OF_ORDERNESS = "max.out.of.orderness.seconds"
TICKS_KEYS = "ticks.keys"
TICK_DELAY = "tick.delay.ms"  # how long after the transactions it passes a time tick is written (ticks.sql)
KAFKA_SECURITY = "kafka.security"
AUTO_OFFSET_RESET = "auto.offset.reset"
ARCHIVE_PATH = "archive.path"
ARCHIVE_ROLLOVER = "archive.rollover.seconds"  # how long a part file stays open before it is committed
# The archive bucket's region and its regional S3 endpoint (the stack's): without them Hadoop's S3A client
# (flink-s3-fs-hadoop) sends its requests to s3.amazonaws.com, which isolated subnets outside us-east-1 cannot reach.
S3_REGION = "s3.region"
S3_ENDPOINT = "s3.endpoint"
CHECKPOINTS_DIR = "checkpoints.dir"
TMP_DIR = "tmp.dir"  # local only: the mini-cluster's working files (else /tmp, left behind when the job is stopped)
PARALLELISM = "parallelism"
BOUNDED = "bounded"
REQUIRED = (BOOTSTRAP_SERVERS, TRANSACTIONS_TOPIC, FEATURES_TOPIC, INVALID_TOPIC)
DEFAULTS = {
    CONSUMER_GROUP: "fraudstream-features",
    MAX_OUT_OF_ORDERNESS: "0",
    KAFKA_SECURITY: "iam",
    AUTO_OFFSET_RESET: "latest",
    # Files roll every 15 minutes on S3 (few, large objects); the local pipeline rolls each second so that
    # `fraudstream consistency` finds every transaction it carried a moment after the last verdict.
    ARCHIVE_ROLLOVER: "900",
    # A producer's burst reaching its partitions up to this far apart (processing time) is scored on time.
    TICK_DELAY: "200",
}
# Time ticks (flink_sql/ticks.sql): one per this much processing time while transactions arrive, written
# tick.delay.ms after the transactions it passes, or the out-of-orderness when that is longer.
TICK_INTERVAL_MS = 100
MAX_TICK_DELAY_MS = 60_000
TICK_DELAY_EXPECTED = f"a multiple of {TICK_INTERVAL_MS} ms up to {MAX_TICK_DELAY_MS}"
OUT_OF_ORDERNESS_EXPECTED = (f"0 to {MAX_TICK_DELAY_MS // 1000} seconds in whole milliseconds with time ticks "
                             "(a tick waits that long)")


def tick_delay_ok(delay_ms: int) -> bool:
    return 0 <= delay_ms <= MAX_TICK_DELAY_MS and delay_ms % TICK_INTERVAL_MS == 0


def out_of_orderness_ok(seconds: float) -> bool:
    """Whole milliseconds (the tick and the watermark move in ms) from 0 to the longest tick delay."""
    return 0 <= seconds <= MAX_TICK_DELAY_MS / 1000 and abs(seconds * 1000 - round(seconds * 1000)) < 1e-6


def tick_write_delay_ms(delay_ms: int, out_of_orderness_ms: int) -> int:
    """How long after the transactions it passes a tick is written: tick.delay.ms, or the out-of-orderness
    rounded up to whole tick intervals when that is longer, since a tick moves the watermark past everything it
    passes and a straggler within the tolerance must land before it."""
    return max(delay_ms, -(-out_of_orderness_ms // TICK_INTERVAL_MS) * TICK_INTERVAL_MS)


@dataclass(frozen=True)
class EventTime:
    """How the job judges event time (docs/streaming.md): how far behind the newest transaction one may be stamped
    and still be on time, and how far apart (processing time) a burst may land on its partitions. The stack's
    context (maxOutOfOrdernessSeconds, tickDelayMs) and `fraudstream replay` (--max-out-of-orderness,
    --tick-delay-ms) set the same two; flink_sql/main.py checks them with tick_delay_ok and out_of_orderness_ok."""

    max_out_of_orderness_s: float = float(DEFAULTS[MAX_OUT_OF_ORDERNESS])
    tick_delay_ms: int = int(DEFAULTS[TICK_DELAY])

    def properties(self) -> dict[str, str]:
        return {MAX_OUT_OF_ORDERNESS: f"{self.max_out_of_orderness_s:g}", TICK_DELAY: str(self.tick_delay_ms)}


def runtime_properties(bootstrap_servers: str, transactions_topic: str, features_topic: str, invalid_topic: str,
                       ticks_keys: list[str] | tuple[str, ...] = (), consumer_group: str = DEFAULTS[CONSUMER_GROUP],
                       event_time: EventTime = EventTime(), archive_path: str | None = None,
                       **extra: str) -> dict[str, str]:
    """The `fraudstream` property group for these settings (values may be CDK tokens); ``extra`` takes
    the other keys by their property name with '.' as '_' (kafka_security="plaintext", ...)."""
    properties = {
        BOOTSTRAP_SERVERS: bootstrap_servers,
        TRANSACTIONS_TOPIC: transactions_topic,
        FEATURES_TOPIC: features_topic,
        INVALID_TOPIC: invalid_topic,
        CONSUMER_GROUP: consumer_group,
        **event_time.properties(),
    }
    if ticks_keys:
        properties[TICKS_KEYS] = ",".join(ticks_keys)
    if archive_path:
        properties[ARCHIVE_PATH] = archive_path
    known = {key.replace(".", "_"): key for key in (KAFKA_SECURITY, AUTO_OFFSET_RESET, CHECKPOINTS_DIR, TMP_DIR,
                                                    PARALLELISM, BOUNDED, ARCHIVE_ROLLOVER, S3_REGION, S3_ENDPOINT)}
    for name, value in extra.items():
        if name not in known:
            raise TypeError(f"unknown runtime property {name!r}")
        properties[known[name]] = str(value)
    return properties


def consumer_groups(group: str, archive: bool) -> list[str]:
    """Every consumer group the job reads the transactions topic as: the features', the unparsed source's
    (invalid records), and the archive's own when it archives (the stack grants each)."""
    return [group, f"{group}-unparsed"] + ([f"{group}-archive"] if archive else [])
