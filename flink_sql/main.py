"""PyFlink entry point: the 10-minute aggregation, on Managed Service for Apache Flink or locally.

On the managed service (runtime FLINK-1_20) this file is the application's `python` entry: it
reads the runtime properties, renders tables_msk.sql and submits
`INSERT INTO aggregates <aggregate_10m.sql>`. Locally (`--local`) the same statement runs in a
Flink mini-cluster over tables_local.sql, whose two tables are directories of JSON-lines files.

Runtime properties, group `fraudstream` (the CDK app writes them with `runtime_properties`, through
fraudstream/packaging/flink_app.py; application_properties.json has local values): bootstrap.servers,
transactions.topic, aggregates.topic, consumer.group, time.mode (processing | event),
max.out.of.orderness.seconds, and optionally archive.path (an s3:// URI: every transaction is also
written there as JSON lines, partitioned by day, for the nightly batch job).

Standard library only at import: the CDK app and the local pipeline read this file's names without PyFlink.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANAGED_PROPERTIES = Path("/etc/flink/application_properties.json")
PROPERTY_GROUP = "fraudstream"
READY_MARKER = "aggregation job submitted"
LOCAL_COMMIT_MS = 200  # local aggregate files appear at most this late (plus processing)
TIME_MODES = ("processing", "event")
# The keys of the property group, one name each.
BOOTSTRAP_SERVERS = "bootstrap.servers"
TRANSACTIONS_TOPIC = "transactions.topic"
AGGREGATES_TOPIC = "aggregates.topic"
CONSUMER_GROUP = "consumer.group"
TIME_MODE = "time.mode"
MAX_OUT_OF_ORDERNESS = "max.out.of.orderness.seconds"
ARCHIVE_PATH = "archive.path"
DEFAULTS = {
    CONSUMER_GROUP: "fraudstream-aggregation",
    TIME_MODE: "processing",
    MAX_OUT_OF_ORDERNESS: "0",
}


def runtime_properties(bootstrap_servers: str, transactions_topic: str, aggregates_topic: str,
                       consumer_group: str = DEFAULTS[CONSUMER_GROUP], time_mode: str = DEFAULTS[TIME_MODE],
                       max_out_of_orderness_seconds: str = DEFAULTS[MAX_OUT_OF_ORDERNESS],
                       archive_path: str | None = None) -> dict[str, str]:
    """The `fraudstream` property group for these settings (values may be CDK tokens)."""
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
    return properties


def sql_file(name: str) -> str:
    """A SQL file of this directory without its comment lines."""
    text = (HERE / f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def time_attribute(mode: str, max_out_of_orderness_seconds: float = 0) -> str:
    """The `row_time` column (and watermark) the query windows on."""
    if mode not in TIME_MODES:
        raise ValueError(f"time mode {mode!r}: expected one of {', '.join(TIME_MODES)}")
    return sql_file(f"time_{mode}").format(max_out_of_orderness_seconds=float(max_out_of_orderness_seconds))


def statements(text: str) -> list[str]:
    """Statements end with ';' at the end of a line (a ';' inside a value, as in the JAAS config, does not)."""
    return [part.strip() for part in re.split(r";[ \t]*(?:\n|$)", text) if part.strip()]


def aggregate_query() -> str:
    return sql_file("aggregate_10m")


def msk_tables(properties: dict[str, str]) -> list[str]:
    props = {**DEFAULTS, **properties}
    missing = [k for k in (BOOTSTRAP_SERVERS, TRANSACTIONS_TOPIC, AGGREGATES_TOPIC) if not props.get(k)]
    if missing:
        raise ValueError(f"runtime property group {PROPERTY_GROUP!r} lacks {', '.join(missing)}")
    return statements(
        sql_file("tables_msk").format(
            time_attribute=time_attribute(props[TIME_MODE], float(props[MAX_OUT_OF_ORDERNESS])),
            bootstrap_servers=props[BOOTSTRAP_SERVERS],
            transactions_topic=props[TRANSACTIONS_TOPIC],
            aggregates_topic=props[AGGREGATES_TOPIC],
            consumer_group=props[CONSUMER_GROUP],
        )
    )


def archive_tables(properties: dict[str, str]) -> list[str]:
    """The archive sink, when the runtime properties name an archive.path (else nothing)."""
    path = properties.get(ARCHIVE_PATH)
    return statements(sql_file("archive_s3").format(archive_path=path)) if path else []


def archive_query() -> str:
    return sql_file("archive_query")


def local_tables(transactions_path: str, aggregates_path: str, mode: str, watch_seconds: float | None) -> list[str]:
    monitor = f",\n    'source.monitor-interval' = '{int(watch_seconds * 1000)}ms'" if watch_seconds else ""
    return statements(
        sql_file("tables_local").format(
            time_attribute=time_attribute(mode), transactions_path=transactions_path,
            aggregates_path=aggregates_path, monitor=monitor, roll_interval=f"{LOCAL_COMMIT_MS}ms",
        )
    )


def load_properties(path: Path) -> dict[str, str]:
    """The `fraudstream` group of a runtime-properties file ([{PropertyGroupId, PropertyMap}])."""
    groups = {g["PropertyGroupId"]: g["PropertyMap"] for g in json.loads(path.read_text(encoding="utf-8"))}
    return groups.get(PROPERTY_GROUP, {})


def table_environment(parallelism: int | None = None):
    """A streaming table environment; ``parallelism`` None leaves it to the cluster (on the managed
    service, the application's parallelism setting and autoscaling)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("table.local-time-zone", "UTC")  # the archive's day partitions are UTC days
    if parallelism is not None:
        env.get_config().set("parallelism.default", str(parallelism))
    return env


def run_managed(properties: dict[str, str]) -> None:
    """Submit the aggregation against MSK (the managed service keeps it running)."""
    env = table_environment()
    archive = archive_tables(properties)
    for ddl in msk_tables(properties) + archive:
        env.execute_sql(ddl)
    statement_set = env.create_statement_set()  # one job: both INSERTs read the topic once
    statement_set.add_insert_sql(f"INSERT INTO aggregates {aggregate_query()}")
    if archive:
        statement_set.add_insert_sql(f"INSERT INTO transactions_archive {archive_query()}")
    statement_set.execute()


def run_local(transactions_path: str, aggregates_path: str, mode: str, watch_seconds: float | None) -> None:
    """Run `INSERT INTO aggregates <query>` over the local topics, as on MSK.

    With ``watch_seconds`` the job keeps watching for new transaction files until it is stopped;
    without, it reads what is there and returns once every aggregate is written. Aggregate files
    roll and are committed every LOCAL_COMMIT_MS (a checkpoint), which bounds their delay.
    """
    env = table_environment(parallelism=1)  # the local tests and benchmark were measured at 1
    config = env.get_config()
    config.set("execution.checkpointing.interval", f"{LOCAL_COMMIT_MS}ms")
    # Window state outgrows the JobManager's 5 MB in-memory limit past a few thousand cards.
    config.set("state.checkpoint-storage", "filesystem")
    config.set("state.checkpoints.dir", (Path(aggregates_path).resolve().parent / ".flink-checkpoints").as_uri())
    config.set("state.checkpoints.num-retained", "1")
    for ddl in local_tables(transactions_path, aggregates_path, mode, watch_seconds):
        env.execute_sql(ddl)
    result = env.execute_sql(f"INSERT INTO aggregates {aggregate_query()}")
    print(READY_MARKER, flush=True)  # the local pipeline waits for this line
    result.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="run over the local topics instead of MSK")
    parser.add_argument("--transactions", help="--local: the transactions topic directory")
    parser.add_argument("--aggregates", help="--local: the aggregates topic directory")
    parser.add_argument("--time-mode", choices=TIME_MODES, default=DEFAULTS[TIME_MODE])
    parser.add_argument("--watch", type=float, metavar="SECONDS",
                        help="--local: keep watching for new transactions, checking this often")
    parser.add_argument("--properties", type=Path, help="runtime properties file (default: the managed service's)")
    args = parser.parse_args(argv)
    if args.local:
        if not (args.transactions and args.aggregates):
            parser.error("--local needs --transactions and --aggregates")
        run_local(args.transactions, args.aggregates, args.time_mode, args.watch)
    else:
        run_managed(load_properties(args.properties or MANAGED_PROPERTIES))


if __name__ == "__main__":
    main()
