"""PyFlink entry point: each transaction with its streaming features, on Managed Service for Apache Flink or here.

One code path for both, as AWS's managed-Flink Python examples have it: read the runtime properties,
render the SQL files of this directory from them and submit, as one job:

- features_in_order.sql: every valid transaction with its card's 10-minute count and sum, previous
  transaction and day totals, on event time, in order (docs/streaming.md: "Features in order");
- late_features.sql: the valid transactions behind the watermark, scored on themselves and marked late;
- invalid_transactions.sql: every refused record's place and reason;
- ticks.sql (when ticks.keys is set): time ticks that keep event time moving on a quiet stream;
- archive_s3.sql (when archive.path is set): every valid transaction, through its own source.

- On the managed service (runtime FLINK-1_20) this file is the application's `python` entry and reads
  /etc/flink/application_properties.json; the jar is the application's (run options group).
- With `--local --properties FILE` (the local pipeline, fraudstream/local/flink.py, runs it from the
  built application zip) the same job runs in a mini-cluster against the local Kafka broker; the jar
  next to this file (lib/fraudstream-flink-deps.jar) goes on `pipeline.jars`, checkpoints go to a
  directory, the job resumes from the latest one there, and READY_MARKER is printed once every task runs.

Runtime properties, group `fraudstream` (the CDK app writes them with `runtime_properties`, through
fraudstream/packaging/flink_app.py; application_properties.json has example values): bootstrap.servers,
transactions.topic, features.topic, invalid.topic, consumer.group, max.out.of.orderness.seconds,
kafka.security (iam | plaintext), auto.offset.reset (where a new consumer group starts: latest |
earliest), ticks.keys (one Kafka key per partition of the transactions topic, comma-separated), tick.delay.ms
(how long after the transactions it passes a time tick is written, a multiple of 100 ms), optionally
archive.path (every transaction is also written there as JSON lines, partitioned by UTC day, for the nightly
batch job and `fraudstream consistency`), archive.rollover.seconds, s3.region and s3.endpoint (the archive
bucket's region and regional endpoint, given to the S3A filesystem), and locally checkpoints.dir,
tmp.dir, parallelism and bounded (stop at the offsets that are the latest when the job starts: tests).

At import only the standard library, fraudstream/contract.py and fraudstream/flink_properties.py (pure Python):
the application zip carries both beside this file, so the validity rule and the event time are rendered from
the same definitions the handlers and the batch SQL use, and the property names from the ones the CDK app and
the local pipeline write.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In the application zip fraudstream/contract.py sits beside this file; in the repository, one level up.
for _root in (HERE, HERE.parent):
    if (_root / "fraudstream" / "contract.py").is_file():
        if str(_root) not in sys.path:
            sys.path.insert(0, str(_root))
        break
from fraudstream import contract  # noqa: E402
from fraudstream.flink_properties import (  # noqa: E402 (the job's property names, shared with the Python side)
    PROPERTY_GROUP,
    READY_MARKER,
    BOOTSTRAP_SERVERS,
    TRANSACTIONS_TOPIC,
    FEATURES_TOPIC,
    INVALID_TOPIC,
    CONSUMER_GROUP,
    MAX_OUT_OF_ORDERNESS,
    TICKS_KEYS,
    TICK_DELAY,
    KAFKA_SECURITY,
    AUTO_OFFSET_RESET,
    ARCHIVE_PATH,
    ARCHIVE_ROLLOVER,
    S3_REGION,
    S3_ENDPOINT,
    CHECKPOINTS_DIR,
    TMP_DIR,
    PARALLELISM,
    BOUNDED,
    REQUIRED,
    DEFAULTS,
    MAX_TICK_DELAY_MS,
    OUT_OF_ORDERNESS_EXPECTED,
    TICK_DELAY_EXPECTED,
    TICK_INTERVAL_MS,
    consumer_groups,
    out_of_orderness_ok,
    tick_delay_ok,
    tick_write_delay_ms,
)

MANAGED_PROPERTIES = Path("/etc/flink/application_properties.json")
LOCAL_JAR = HERE / "lib" / "fraudstream-flink-deps.jar"  # where the application zip puts the dependency jar
LOCAL_CHECKPOINT_MS = 1000  # locally: how often the job checkpoints and commits its Kafka offsets
SECURITY_MODES = ("iam", "plaintext")
# A row stamped further ahead of this machine's clock would move the watermark past every other row: it is
# taken as late instead (docs/streaming.md: "Late transactions").
FUTURE_TOLERANCE_MS = 300_000
# Latency settings: how often the sources emit watermarks, and how long a network buffer may wait to fill
# (Flink's defaults, 200 ms and 100 ms, would add their sum to each transaction's wait for its features).
WATERMARK_INTERVAL = "50 ms"
BUFFER_TIMEOUT = "10 ms"
# Per card window state is kept this long after its last use (processing time): the 8-day frame of the day
# totals is the oldest any transaction reads.
STATE_TTL = "8 d"
MAX_START_RESTARTS = 3  # locally: a job restarted this often before all its tasks run is stopped (it would loop)
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


def sql_file(name: str) -> str:
    """A SQL file of this directory without its comment lines."""
    text = (HERE / f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


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


def _options(options: dict[str, str]) -> str:
    """Table options as lines to splice after another option (each line starts the next option)."""
    return "".join(f"\n    '{key}' = '{value}'," for key, value in options.items())


def _is_tick() -> str:
    """A record is a tick when it carries tick_ms and none of a transaction's fields."""
    return (f"{contract.TICK_MS} IS NOT NULL AND {contract.CC_NUM} IS NULL AND {contract.AMOUNT} IS NULL "
            f"AND {contract.TRANS_TS} IS NULL")


def row_ms() -> str:
    """The source's event time in ms: a tick's or a transaction's, 0 when unusable or too far ahead of the clock."""
    seconds = f"TRY_CAST({contract.TRANS_TS} AS DOUBLE)"
    ahead = f"UNIX_TIMESTAMP() * 1000 + {FUTURE_TOLERANCE_MS}"
    tick_ahead = f"{ahead} + {MAX_TICK_DELAY_MS}"  # a tick carries the newest time plus the out-of-orderness
    return (f"COALESCE(CASE WHEN {_is_tick()} AND TRY_CAST({contract.TICK_MS} AS BIGINT) <= {tick_ahead} "
            f"THEN TRY_CAST({contract.TICK_MS} AS BIGINT) END, "
            f"CASE WHEN {seconds} BETWEEN {contract.MIN_EVENT_TIME!r} AND {contract.MAX_EVENT_TIME!r} "
            f"AND {contract.event_ms_sql(seconds)} <= {ahead} THEN {contract.event_ms_sql(seconds)} END, 0)")


def parsed_view(view: str, source: str) -> str:
    [statement] = statements(sql_file("transactions_parsed").format(
        view=view, source=source, invalid_reason=contract.invalid_reason_sql(), is_tick=_is_tick(),
        event_ms=contract.event_ms_sql(f"TRY_CAST({contract.TRANS_TS} AS DOUBLE)")))
    return statement


def _checked(properties: dict[str, str]) -> dict[str, str]:
    props = {**DEFAULTS, **properties}
    missing = [k for k in REQUIRED if not props.get(k)]
    if missing:
        raise ValueError(f"runtime property group {PROPERTY_GROUP!r} lacks {', '.join(missing)}")
    if props[KAFKA_SECURITY] not in SECURITY_MODES:
        raise ValueError(f"{KAFKA_SECURITY}={props[KAFKA_SECURITY]!r}: expected one of {', '.join(SECURITY_MODES)}")
    if props[AUTO_OFFSET_RESET] not in ("latest", "earliest"):
        raise ValueError(f"{AUTO_OFFSET_RESET}={props[AUTO_OFFSET_RESET]!r}: expected latest or earliest")
    return props


def tolerance_ms(props: dict[str, str]) -> int:
    """max.out.of.orderness.seconds in whole ms: the watermark trails a row by it (+1 ms) and a tick carries it."""
    return round(float(props[MAX_OUT_OF_ORDERNESS]) * 1000)


def kafka_tables(properties: dict[str, str]) -> list[str]:
    """The transactions sources, the features and invalid-transactions sinks (for MSK or the local broker) and
    the parsed view."""
    props = _checked(properties)
    bounded = {"scan.bounded.mode": "latest-offset"} if props.get(BOUNDED) == "true" else {}
    groups = consumer_groups(props[CONSUMER_GROUP], archive=False)
    return statements(
        sql_file("tables_kafka").format(
            row_ms=row_ms(), future_tolerance_ms=FUTURE_TOLERANCE_MS,
            watermark_delay=interval((tolerance_ms(props) + 1) / 1000),
            bootstrap_servers=props[BOOTSTRAP_SERVERS],
            transactions_topic=props[TRANSACTIONS_TOPIC],
            features_topic=props[FEATURES_TOPIC],
            invalid_topic=props[INVALID_TOPIC],
            consumer_group=groups[0],
            unparsed_group=groups[1],
            auto_offset_reset=props[AUTO_OFFSET_RESET],
            security=_options(SECURITY_OPTIONS[props[KAFKA_SECURITY]]),
            bounded=_options(bounded),
        )
    ) + [parsed_view("parsed_transactions", "transactions")]


def feature_queries() -> list[str]:
    """The INSERTs of every transaction's features (on time and late) and of the invalid records' reports."""
    parsed = {"parsed": "parsed_transactions"}
    return [f"INSERT INTO transaction_features {sql_file('features_in_order').format(ms_per_day=contract.MS_PER_DAY, **parsed)}",
            f"INSERT INTO transaction_features {sql_file('late_features').format(**parsed)}",
            f"INSERT INTO invalid_transactions {sql_file('invalid_transactions').format(**parsed)}"]


def ticks(properties: dict[str, str]) -> tuple[list[str], str | None]:
    """The ticks' sink and INSERT when the properties name ticks.keys (else none: a bounded run ends with a
    final watermark instead)."""
    props = _checked(properties)
    keys = [key for key in props.get(TICKS_KEYS, "").split(",") if key]
    if not keys or props.get(BOUNDED) == "true":
        return [], None
    if any(not re.fullmatch(r"[A-Za-z0-9_-]+", key) for key in keys):
        raise ValueError(f"{TICKS_KEYS}={props[TICKS_KEYS]!r}: expected comma-separated keys of letters and digits")
    delay = props[TICK_DELAY]
    if not (delay.isdigit() and tick_delay_ok(int(delay))):
        raise ValueError(f"{TICK_DELAY}={delay!r}: expected {TICK_DELAY_EXPECTED}")
    if not out_of_orderness_ok(float(props[MAX_OUT_OF_ORDERNESS])):
        raise ValueError(f"{MAX_OUT_OF_ORDERNESS}={props[MAX_OUT_OF_ORDERNESS]}: expected {OUT_OF_ORDERNESS_EXPECTED}")
    tolerance = tolerance_ms(props)
    sink, view, insert = statements(sql_file("ticks").format(
        transactions_topic=props[TRANSACTIONS_TOPIC], bootstrap_servers=props[BOOTSTRAP_SERVERS],
        security=_options(SECURITY_OPTIONS[props[KAFKA_SECURITY]]), parsed="parsed_transactions",
        interval_seconds=f"{TICK_INTERVAL_MS / 1000:g}", tolerance_ms=tolerance,
        window_seconds=f"{(tick_write_delay_ms(int(delay), tolerance) + TICK_INTERVAL_MS) / 1000:g}",
        key_array=", ".join(f"'{key}'" for key in keys)))
    return [sink, view], insert


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
    sink = sql_file("archive_s3").format(archive_path=path,
                                         archive_group=consumer_groups(props[CONSUMER_GROUP], archive=True)[-1],
                                         rollover=f"{rollover:g} s", check=f"{min(rollover, 60.0):g} s")
    return statements(sink) + [parsed_view("parsed_to_archive", "transactions_to_archive")]


def archive_query() -> str:
    return sql_file("archive_query")


def load_properties(path: Path) -> dict[str, str]:
    """The `fraudstream` group of a runtime-properties file ([{PropertyGroupId, PropertyMap}])."""
    groups = {g["PropertyGroupId"]: g["PropertyMap"] for g in json.loads(path.read_text(encoding="utf-8"))}
    return groups.get(PROPERTY_GROUP, {})


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest completed checkpoint under ``directory``: the highest-numbered chk-N with its _metadata (a resumed
    job numbers on from the checkpoint it resumed from), if any.

    By number, not by a directory's modification time: Flink deletes a subsumed checkpoint's files in parallel
    (execution.checkpointing.cleaner.parallel-mode), _metadata possibly last, so a job killed meanwhile leaves an
    older chk-N whose directory changed last and whose state files are gone; resuming from it fails on every
    attempt. _metadata itself appears whole or not at all (Flink writes it through a recoverable writer)."""
    done = [meta.parent for meta in directory.glob("*/chk-*/_metadata")] if directory.is_dir() else []
    numbered = [(int(path.name.removeprefix("chk-")), path) for path in done if path.name.removeprefix("chk-").isdigit()]
    return max(numbered, key=lambda item: (item[0], (item[1] / "_metadata").stat().st_mtime))[1] if numbered else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_settings(properties: dict[str, str]) -> dict[str, str]:
    """The mini-cluster's configuration: the jar, parallelism, checkpoints kept and resumed from, a REST port
    (run() asks it when every task runs)."""
    settings = {
        "pipeline.jars": LOCAL_JAR.as_uri(),
        "parallelism.default": properties.get(PARALLELISM, "1"),
        "execution.checkpointing.interval": f"{LOCAL_CHECKPOINT_MS}ms",
        # The Kafka source commits its offsets at each checkpoint; a killed job resumes from the last one.
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.checkpoints.num-retained": "2",
        "classloader.check-leaked-classloader": "false",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(free_port()),
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


def job_settings() -> dict[str, str]:
    """What every run sets, here and on the managed service: latency and state retention."""
    return {"pipeline.auto-watermark-interval": WATERMARK_INTERVAL, "execution.buffer-timeout.interval": BUFFER_TIMEOUT,
            "table.exec.state.ttl": STATE_TTL}


def filesystem_settings(properties: dict[str, str]) -> dict[str, str]:
    """The S3A client's region and endpoint, as Flink configuration (flink-s3-fs-hadoop maps `s3.*` keys to
    Hadoop's `fs.s3a.*`): without them Hadoop 3.3's S3A sends every request to s3.amazonaws.com."""
    settings = {}
    if properties.get(S3_REGION):
        settings["s3.endpoint.region"] = properties[S3_REGION]
    if properties.get(S3_ENDPOINT):
        settings["s3.endpoint"] = properties[S3_ENDPOINT]
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


def _get(port: str, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)


def _failures(port: str, job_id: str) -> list[str] | None:
    """The job's failures so far, oldest first, one line each (exception and message), from its exception
    history: a job that fails while it starts (a checkpoint it cannot restore) is restarted by Flink without end,
    and this is the only place that says why. None when the history cannot be read now."""
    try:
        entries = _get(port, f"/jobs/{job_id}/exceptions").get("exceptionHistory", {}).get("entries", [])
        return [_root_cause(entry.get("stacktrace") or entry.get("exceptionName") or "") for entry in reversed(entries)]
    except (OSError, ValueError, AttributeError):
        return None


def _root_cause(stacktrace: str) -> str:
    """The innermost exception of a Java stack trace, in one line (its last "Caused by:", else its first line)."""
    lines = stacktrace.strip().splitlines() or ["(no message)"]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    return (causes[-1] if causes else lines[0])[:500]


def wait_until_running(port: str, job_id: str, timeout: float = 300) -> None:
    """Until every task of the job runs (execute() returns some seconds before: records sent in between
    would wait), asked of the mini-cluster's REST API; RuntimeError if the job failed or was cancelled, or keeps
    restarting. Each failure meanwhile is printed, as it is seen."""
    deadline = time.monotonic() + timeout
    state = "unknown"
    failures: list[str] = []
    restarts: set[int] = set()  # the times the whole job went RESTARTING
    while time.monotonic() < deadline:
        try:
            job = _get(port, f"/jobs/{job_id}")
        except (OSError, ValueError):
            time.sleep(0.2)  # the REST endpoint is starting
            continue
        state = job.get("state", state)
        now = _failures(port, job_id)
        for failure in (now or [])[len(failures):]:
            print(f"the job failed while starting ({state} now): {failure}", flush=True)
        failures = now if now and len(now) > len(failures) else failures
        # A whole job that keeps failing (it cannot restore its checkpoint) is restarted by Flink without end: give
        # up and say why. Each whole-job restart stamps its RESTARTING time anew, however briefly it lasted; one
        # failing region (the archive's) restarts alone while the job stays RUNNING, and stamps nothing.
        restarts.add(job.get("timestamps", {}).get("RESTARTING", 0))
        restarts.discard(0)
        if len(restarts) >= MAX_START_RESTARTS:
            raise RuntimeError(f"the job restarted {len(restarts)} times while starting; the last failure: "
                               f"{failures[-1] if failures else 'not recorded'}")
        statuses = {vertex.get("status") for vertex in job.get("vertices", [])}
        if "RUNNING" in statuses and statuses <= {"RUNNING", "FINISHED"}:  # a bounded source may finish
            return
        if state == "FINISHED":  # a bounded run (tests) that was over before this asked
            return
        if state in ("FAILED", "CANCELED"):
            raise RuntimeError(f"the job ended ({state}) before all its tasks ran; see the log above")
        time.sleep(0.2)
    # Not all seen running in time (a bounded run's tasks may end one by one): go on; the local pipeline's
    # supervisor notices a job that does not make progress (fraudstream/local/flink.py).
    print(f"not every task was seen running within {timeout:g} s (job state: {state})", flush=True)


def run(properties: dict[str, str], local: bool = False, explain: bool = False) -> None:
    """Submit the job; locally, wait for it (it runs until it is stopped, or to the end of a bounded input).
    With ``explain``, print the job's execution plan instead of submitting it."""
    props = _checked(properties)
    settings = {**job_settings(), **filesystem_settings(props), **(local_settings(props) if local else {})}
    env = table_environment(settings)
    tick_tables, tick_insert = ticks(props)
    archive = archive_tables(props)
    for ddl in kafka_tables(props) + tick_tables + archive:
        env.execute_sql(ddl)
    statement_set = env.create_statement_set()  # one job (archive_s3.sql says why the archive has its own source)
    for insert in feature_queries() + ([tick_insert] if tick_insert else []):
        statement_set.add_insert_sql(insert)
    if archive:
        statement_set.add_insert_sql(f"INSERT INTO transactions_archive {archive_query()}")
    if explain:
        print(statement_set.explain(), flush=True)
        return
    result = statement_set.execute()
    if local:
        if props.get(BOUNDED) != "true":  # a bounded run (tests) is waited for to its end, not to its start
            wait_until_running(settings["rest.port"], str(result.get_job_client().get_job_id()))
        resumed = settings.get("execution.savepoint.path")
        print(READY_MARKER + (f" (resumed from {resumed})" if resumed else ""), flush=True)
        result.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true",
                        help="run in a local mini-cluster with the jar beside this file, and wait")
    parser.add_argument("--properties", type=Path, help="runtime properties file (default: the managed service's)")
    parser.add_argument("--explain", action="store_true", help="print the job's execution plan and submit nothing")
    args = parser.parse_args(argv)
    run(load_properties(args.properties or MANAGED_PROPERTIES), local=args.local, explain=args.explain)


if __name__ == "__main__":
    main()
