"""PyFlink entry point: the 10-minute aggregation, on Managed Service for Apache Flink or on this machine.

One code path for both, as AWS's managed-Flink Python examples have it: read the runtime properties,
render tables_kafka.sql from them, submit `INSERT INTO aggregates <aggregate_10m.sql>` (and, when an
archive.path is set, the transactions archive, through its own source: a failing archive restarts only
itself) as one job.

- On the managed service (runtime FLINK-1_20) this file is the application's `python` entry and reads
  /etc/flink/application_properties.json; the jar is the application's (run options group).
- With `--local --properties FILE` (the local pipeline, fraudstream/local/flink.py, runs it from the
  built application zip) the same job runs in a mini-cluster against the local Kafka broker; the jar
  next to this file (lib/fraudstream-flink-deps.jar) goes on `pipeline.jars`, checkpoints go to a
  directory, and the job resumes from the latest one there.

Runtime properties, group `fraudstream` (the CDK app writes them with `runtime_properties`, through
fraudstream/packaging/flink_app.py; application_properties.json has example values): bootstrap.servers,
transactions.topic, aggregates.topic, consumer.group, time.mode (processing | event),
max.out.of.orderness.seconds, kafka.security (iam | plaintext), auto.offset.reset (where a new consumer
group starts: latest | earliest), optionally archive.path (every transaction is also written there as
JSON lines, partitioned by UTC day, for the nightly batch job and `fraudstream consistency`) and
archive.rollover.seconds, and locally checkpoints.dir,
parallelism and bounded (stop at the offsets that are the latest when the job starts: tests).

At import only the standard library and fraudstream/contract.py (pure Python): the CDK app and the local
pipeline read this file's names without PyFlink. The application zip carries contract.py beside this file,
so the query's filter of valid transactions is rendered from the same rule the handlers apply.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In the application zip fraudstream/contract.py sits beside this file; in the repository, one level up.
for _root in (HERE, HERE.parent):
    if (_root / "fraudstream" / "contract.py").is_file():
        if str(_root) not in sys.path:
            sys.path.insert(0, str(_root))
        break
from fraudstream import contract  # noqa: E402

MANAGED_PROPERTIES = Path("/etc/flink/application_properties.json")
LOCAL_JAR = HERE / "lib" / "fraudstream-flink-deps.jar"  # where the application zip puts the dependency jar
PROPERTY_GROUP = "fraudstream"
READY_MARKER = "aggregation job submitted"
LOCAL_CHECKPOINT_MS = 1000  # locally: how often the job checkpoints and commits its Kafka offsets
TIME_MODES = ("processing", "event")
SECURITY_MODES = ("iam", "plaintext")
# The keys of the property group, one name each.
BOOTSTRAP_SERVERS = "bootstrap.servers"
TRANSACTIONS_TOPIC = "transactions.topic"
AGGREGATES_TOPIC = "aggregates.topic"
CONSUMER_GROUP = "consumer.group"
TIME_MODE = "time.mode"
MAX_OUT_OF_ORDERNESS = "max.out.of.orderness.seconds"
IDLE_TIMEOUT = "idle.timeout.seconds"
KAFKA_SECURITY = "kafka.security"
AUTO_OFFSET_RESET = "auto.offset.reset"
ARCHIVE_PATH = "archive.path"
ARCHIVE_ROLLOVER = "archive.rollover.seconds"  # how long a part file stays open before it is committed
CHECKPOINTS_DIR = "checkpoints.dir"
TMP_DIR = "tmp.dir"  # local only: the mini-cluster's working files (else /tmp, left behind when the job is stopped)
PARALLELISM = "parallelism"
BOUNDED = "bounded"
DEFAULTS = {
    CONSUMER_GROUP: "fraudstream-aggregation",
    TIME_MODE: "processing",
    MAX_OUT_OF_ORDERNESS: "0",
    # Event time over several partitions: a partition quiet this long stops holding the watermark back.
    IDLE_TIMEOUT: "5",
    KAFKA_SECURITY: "iam",
    AUTO_OFFSET_RESET: "latest",
    # Files roll every 15 minutes on S3 (few, large objects); the local pipeline rolls each second so that
    # `fraudstream consistency` finds every transaction it carried a moment after the last verdict.
    ARCHIVE_ROLLOVER: "900",
}
# The client options of each security mode (the rest of the Kafka tables is the same everywhere).
SECURITY_OPTIONS = {
    "iam": {  # Amazon MSK: IAM authentication over TLS, the MSK IAM library in the application jar
        "properties.security.protocol": "SASL_SSL",
        "properties.sasl.mechanism": "AWS_MSK_IAM",
        "properties.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
        "properties.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        "properties.reconnect.backoff.ms": str(contract.MSK_RECONNECT_BACKOFF_MS),
        "properties.reconnect.backoff.max.ms": str(contract.MSK_RECONNECT_BACKOFF_MAX_MS),
    },
    "plaintext": {"properties.security.protocol": "PLAINTEXT"},  # the local broker, loopback only
}


def runtime_properties(bootstrap_servers: str, transactions_topic: str, aggregates_topic: str,
                       consumer_group: str = DEFAULTS[CONSUMER_GROUP], time_mode: str = DEFAULTS[TIME_MODE],
                       max_out_of_orderness_seconds: str = DEFAULTS[MAX_OUT_OF_ORDERNESS],
                       archive_path: str | None = None, **extra: str) -> dict[str, str]:
    """The `fraudstream` property group for these settings (values may be CDK tokens); ``extra`` takes
    the other keys by their property name with '.' as '_' (kafka_security="plaintext", ...)."""
    properties = {
        BOOTSTRAP_SERVERS: bootstrap_servers,
        TRANSACTIONS_TOPIC: transactions_topic,
        AGGREGATES_TOPIC: aggregates_topic,
        CONSUMER_GROUP: consumer_group,
        TIME_MODE: time_mode,
        MAX_OUT_OF_ORDERNESS: str(max_out_of_orderness_seconds),
    }
    if archive_path:
        properties[ARCHIVE_PATH] = archive_path
    known = {key.replace(".", "_"): key for key in (IDLE_TIMEOUT, KAFKA_SECURITY, AUTO_OFFSET_RESET, CHECKPOINTS_DIR,
                                                    TMP_DIR, PARALLELISM, BOUNDED, ARCHIVE_ROLLOVER)}
    for name, value in extra.items():
        if name not in known:
            raise TypeError(f"unknown runtime property {name!r}")
        properties[known[name]] = str(value)
    return properties


def sql_file(name: str) -> str:
    """A SQL file of this directory without its comment lines."""
    text = (HERE / f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def time_attribute(mode: str, max_out_of_orderness_seconds: float = 0) -> str:
    """The `row_time` column (and watermark) the query windows on."""
    if mode not in TIME_MODES:
        raise ValueError(f"time mode {mode!r}: expected one of {', '.join(TIME_MODES)}")
    return sql_file(f"time_{mode}").format(max_out_of_orderness=interval(float(max_out_of_orderness_seconds)))


def interval(seconds: float) -> str:
    """``seconds`` as a Flink SQL interval literal: DAY TO SECOND, since INTERVAL 'n' SECOND holds 2 digits only."""
    if not 0 <= seconds < 100 * 86_400:
        raise ValueError(f"{MAX_OUT_OF_ORDERNESS}={seconds:g}: expected seconds in [0, 8640000)")
    days, rest = divmod(round(seconds * 1000), 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}' DAY TO SECOND(3)"


def statements(text: str) -> list[str]:
    """Statements end with ';' at the end of a line (a ';' inside a value, as in the JAAS config, does not)."""
    return [part.strip() for part in re.split(r";[ \t]*(?:\n|$)", text) if part.strip()]


def aggregate_query() -> str:
    return sql_file("aggregate_10m")


def _options(options: dict[str, str]) -> str:
    """Table options as lines to splice after another option (each line starts the next option)."""
    return "".join(f"\n    '{key}' = '{value}'," for key, value in options.items())


def kafka_tables(properties: dict[str, str]) -> list[str]:
    """The transactions source, the aggregates sink (for MSK or the local broker) and the view of valid transactions."""
    props = {**DEFAULTS, **properties}
    missing = [k for k in (BOOTSTRAP_SERVERS, TRANSACTIONS_TOPIC, AGGREGATES_TOPIC) if not props.get(k)]
    if missing:
        raise ValueError(f"runtime property group {PROPERTY_GROUP!r} lacks {', '.join(missing)}")
    if props[KAFKA_SECURITY] not in SECURITY_MODES:
        raise ValueError(f"{KAFKA_SECURITY}={props[KAFKA_SECURITY]!r}: expected one of {', '.join(SECURITY_MODES)}")
    if props[AUTO_OFFSET_RESET] not in ("latest", "earliest"):
        raise ValueError(f"{AUTO_OFFSET_RESET}={props[AUTO_OFFSET_RESET]!r}: expected latest or earliest")
    bounded = {"scan.bounded.mode": "latest-offset"} if props.get(BOUNDED) == "true" else {}
    view = valid_view("valid_transactions", "transactions")
    return statements(
        sql_file("tables_kafka").format(
            time_attribute=time_attribute(props[TIME_MODE], float(props[MAX_OUT_OF_ORDERNESS])),
            bootstrap_servers=props[BOOTSTRAP_SERVERS],
            transactions_topic=props[TRANSACTIONS_TOPIC],
            aggregates_topic=props[AGGREGATES_TOPIC],
            consumer_group=props[CONSUMER_GROUP],
            auto_offset_reset=props[AUTO_OFFSET_RESET],
            security=_options(SECURITY_OPTIONS[props[KAFKA_SECURITY]]),
            bounded=_options(bounded),
        )
    ) + statements(view)


def archive_consumer_group(group: str) -> str:
    """The archive's own consumer group, beside the aggregation's ``group`` (the stack grants both)."""
    return f"{group}-archive"


def valid_view(view: str, source: str) -> str:
    return sql_file("valid_transactions").format(view=view, source=source,
                                                 valid_transaction=contract.valid_transaction_sql())


def archive_tables(properties: dict[str, str]) -> list[str]:
    """The archive's source, view and sink, when the runtime properties name an archive.path (else nothing)."""
    props = {**DEFAULTS, **properties}
    path = props.get(ARCHIVE_PATH)
    if not path:
        return []
    rollover = float(props[ARCHIVE_ROLLOVER])
    if not 0 < rollover <= 86_400:
        raise ValueError(f"{ARCHIVE_ROLLOVER}={props[ARCHIVE_ROLLOVER]!r}: expected seconds in (0, 86400]")
    # The sink checks its files for rollover at the same pace (Flink's default check is once a minute).
    sink = sql_file("archive_s3").format(archive_path=path, archive_group=archive_consumer_group(props[CONSUMER_GROUP]),
                                         rollover=f"{rollover:g} s", check=f"{min(rollover, 60.0):g} s")
    return statements(sink) + statements(valid_view("valid_transactions_to_archive", "transactions_to_archive"))


def archive_query() -> str:
    return sql_file("archive_query")


def load_properties(path: Path) -> dict[str, str]:
    """The `fraudstream` group of a runtime-properties file ([{PropertyGroupId, PropertyMap}])."""
    groups = {g["PropertyGroupId"]: g["PropertyMap"] for g in json.loads(path.read_text(encoding="utf-8"))}
    return groups.get(PROPERTY_GROUP, {})


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest completed checkpoint under ``directory`` (a chk-N with its _metadata), if any."""
    done = [meta.parent for meta in directory.glob("*/chk-*/_metadata")] if directory.is_dir() else []
    return max(done, key=lambda path: path.stat().st_mtime) if done else None


def local_settings(properties: dict[str, str]) -> dict[str, str]:
    """The mini-cluster's configuration: the jar, parallelism, checkpoints kept and resumed from."""
    settings = {
        "pipeline.jars": LOCAL_JAR.as_uri(),
        "parallelism.default": properties.get(PARALLELISM, "1"),
        "execution.checkpointing.interval": f"{LOCAL_CHECKPOINT_MS}ms",
        # The Kafka source commits its offsets at each checkpoint; a killed job resumes from the last one.
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.checkpoints.num-retained": "2",
        "classloader.check-leaked-classloader": "false",
    }
    tmp = properties.get(TMP_DIR)
    if tmp:
        # The RPC system's jar (21 MB), the mini-cluster's blobs and the web upload directory.
        Path(tmp).mkdir(parents=True, exist_ok=True)
        settings["io.tmp.dirs"] = settings["web.tmpdir"] = str(Path(tmp).resolve())
    directory = properties.get(CHECKPOINTS_DIR)
    if directory:
        # Window state outgrows the JobManager's 5 MB in-memory limit past a few thousand cards.
        settings["state.checkpoint-storage"] = "filesystem"
        settings["state.checkpoints.dir"] = Path(directory).resolve().as_uri()
        resume = latest_checkpoint(Path(directory))
        if resume is not None:
            settings["execution.savepoint.path"] = resume.as_uri()
    return settings


def table_environment(settings: dict[str, str] | None = None):
    """A streaming table environment with ``settings``; none leaves parallelism to the cluster (on the
    managed service, the application's parallelism setting and autoscaling)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("table.local-time-zone", "UTC")  # the archive's day partitions are UTC days
    for key, value in (settings or {}).items():
        config.set(key, value)
    return env


def run(properties: dict[str, str], local: bool = False) -> None:
    """Submit the job; locally, wait for it (it runs until it is stopped, or to the end of a bounded input)."""
    props = {**DEFAULTS, **properties}
    settings = local_settings(props) if local else {}
    if props[TIME_MODE] == "event":
        settings["table.exec.source.idle-timeout"] = f"{int(float(props[IDLE_TIMEOUT]) * 1000)}ms"
    env = table_environment(settings)
    archive = archive_tables(props)
    for ddl in kafka_tables(props) + archive:
        env.execute_sql(ddl)
    statement_set = env.create_statement_set()  # one job, two pipelines (archive_s3.sql says why)
    statement_set.add_insert_sql(f"INSERT INTO aggregates {aggregate_query()}")
    if archive:
        statement_set.add_insert_sql(f"INSERT INTO transactions_archive {archive_query()}")
    result = statement_set.execute()
    if local:
        resumed = settings.get("execution.savepoint.path")
        print(READY_MARKER + (f" (resumed from {resumed})" if resumed else ""), flush=True)
        result.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true",
                        help="run in a local mini-cluster with the jar beside this file, and wait")
    parser.add_argument("--properties", type=Path, help="runtime properties file (default: the managed service's)")
    args = parser.parse_args(argv)
    run(load_properties(args.properties or MANAGED_PROPERTIES), local=args.local)


if __name__ == "__main__":
    main()
