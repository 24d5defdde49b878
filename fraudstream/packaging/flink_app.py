"""The Managed Service for Apache Flink application zip: main.py, the SQL, and one dependency jar.

Maven builds the jar from flink_sql/pom.xml, as AWS's managed-Flink Python examples do: it resolves
the Kafka connector, kafka-clients, the MSK IAM auth library (with the AWS SDK it calls) and the S3
filesystem, verifies every download's checksum (`--strict-checksums`) and shades them into one jar,
Flink itself left out (`provided`: the runtime's). The connector is the unshaded flink-connector-kafka
with plain kafka-clients: flink-sql-connector-kafka relocates kafka-clients, and the MSK IAM callback
handler that main.py names in the client options would then not match the relocated interface.
This module zips the jar, as lib/fraudstream-flink-deps.jar, with main.py, the SQL files and
application_properties.json, and refuses a zip that lacks what the job loads (`check_package`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from fraudstream.paths import BUILD, FLINK_SQL, REPO

POM = FLINK_SQL / "pom.xml"
MAVEN_OUT = BUILD / "flink-maven"  # the pom's default output directory (its fraudstream.build.dir)
JAR_NAME = "fraudstream-flink-deps.jar"  # the pom's finalName
DEPS_JAR = f"lib/{JAR_NAME}"
ENTRY_POINT = "main.py"
PROPERTIES = "application_properties.json"
# The group the managed service reads to find the entry point and the jar (the CDK app sets it).
RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options"
RUN_OPTIONS = {"python": ENTRY_POINT, "jarfile": DEPS_JAR}

# What the job loads from the jar: the Kafka table factory and plain kafka-clients (flink_sql/tables_kafka.sql),
# the MSK IAM classes main.py names in the client's SASL options, the s3a:// filesystem (flink_sql/archive_s3.sql).
REQUIRED_CLASSES = (
    "org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicTableFactory",
    "org.apache.kafka.clients.consumer.KafkaConsumer",
    "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
    "software.amazon.msk.auth.iam.IAMLoginModule",
    "org.apache.flink.fs.s3hadoop.S3FileSystemFactory",
)
# Flink finds the factories through service files: (service, implementation) pairs the jar must list.
REQUIRED_SERVICES = (
    ("org.apache.flink.table.factories.Factory", REQUIRED_CLASSES[0]),
    ("org.apache.flink.core.fs.FileSystemFactory", "org.apache.flink.fs.s3hadoop.S3FileSystemFactory"),
)
_MAVEN_TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same inputs give the same zip


def tick_keys(partitions: int) -> list[str]:
    """One Kafka key per partition of a topic of ``partitions``: the key Kafka's default partitioner (murmur2, as
    Flink's Kafka sink applies it) sends to partition i comes i-th. The job writes its time ticks with them
    (flink_sql/ticks.sql), so that every partition gets each tick."""
    from kafka.partitioner.default import murmur2  # the same hash as the Java client's

    if partitions < 1:
        raise ValueError(f"partitions={partitions}: expected at least 1")
    keys: dict[int, str] = {}
    candidate = 0
    while len(keys) < partitions:
        key = f"tick-{candidate}"
        keys.setdefault((murmur2(key.encode()) & 0x7FFFFFFF) % partitions, key)
        candidate += 1
    return [keys[partition] for partition in range(partitions)]


class PackageError(RuntimeError):
    """Maven is missing or fails, or an application zip lacks what the job needs."""


def build_jar(directory: Path = MAVEN_OUT, pom: Path = POM) -> Path:
    """Run Maven on the pom (`clean package`, checksums strict) with its output in `directory`; the shaded jar."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PackageError(f"Maven (mvn) is not installed: it builds the Flink dependency jar from {pom}; "
                           "install Maven 3.8+ and a JDK 11 or newer (e.g. `apt-get install maven`)")
    directory = Path(directory).resolve()
    command = [mvn, "-B", "-q", "--strict-checksums", "-f", str(pom), f"-Dfraudstream.build.dir={directory}",
               "clean", "package"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        output = _ANSI.sub("", result.stdout + result.stderr).splitlines()
        lines = [line for line in output if line.strip() not in ("", "[ERROR]")]
        tail = "\n".join(lines[-_MAVEN_TAIL_LINES:])
        raise PackageError(f"Maven failed (exit {result.returncode}): {' '.join(command)}\n{tail}")
    jar = directory / JAR_NAME
    if not jar.is_file():
        raise PackageError(f"Maven succeeded but wrote no {jar}: does {pom} still set finalName {jar.stem}?")
    return jar


# The contract travels with main.py: the query's filter of valid transactions is rendered from it.
CONTRACT_FILES = ("fraudstream/__init__.py", "fraudstream/contract.py", "fraudstream/flink_properties.py")


def _sources() -> list[tuple[str, Path]]:
    """(name in the zip, file) of everything but the jar."""
    files = [FLINK_SQL / ENTRY_POINT, *sorted(FLINK_SQL.glob("*.sql")), FLINK_SQL / PROPERTIES]
    return [(f.name, f) for f in files] + [(name, REPO / name) for name in CONTRACT_FILES]


def _entry(name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = compress_type
    info.external_attr = 0o644 << 16
    return info


def build(out: Path, jar: Path | None = None) -> Path:
    """Write the application zip: main.py, the SQL files, the runtime properties and the dependency jar.

    Without `jar`, Maven builds it (build_jar) in a fresh directory beside `out`, removed afterwards. The zip
    is checked (check_package) before it replaces `out`, so a failed build leaves the previous one in place.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as work:
        if jar is None:
            jar = build_jar(Path(work) / "maven")
        partial = Path(work) / out.name
        with zipfile.ZipFile(partial, "w") as archive:
            for name, source in _sources():
                archive.writestr(_entry(name, zipfile.ZIP_DEFLATED), source.read_bytes())
            info = _entry(DEPS_JAR, zipfile.ZIP_STORED)  # a jar is compressed already
            info.file_size = Path(jar).stat().st_size
            with open(jar, "rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
        problem = _problem(partial)
        if problem:
            raise PackageError(f"{out} not written: {problem}")
        os.replace(partial, out)
    return out


def _jar_lacks(jar: zipfile.ZipFile) -> list[str]:
    names = set(jar.namelist())
    missing = [name for name in REQUIRED_CLASSES if name.replace(".", "/") + ".class" not in names]
    for service, implementation in REQUIRED_SERVICES:
        path = f"META-INF/services/{service}"
        listed = jar.read(path).decode("utf-8", "replace").split() if path in names else []
        if implementation not in listed:
            missing.append(f"{implementation} in {path}")
    return missing


def _lacks(archive: zipfile.ZipFile) -> str | None:
    """What the application zip lacks, in words, or None."""
    missing = [name for name in (ENTRY_POINT, PROPERTIES, DEPS_JAR, *CONTRACT_FILES) if name not in archive.namelist()]
    if missing:
        return f"lacks {', '.join(missing)}"
    groups = json.loads(archive.read(PROPERTIES))
    run_options = next((g.get("PropertyMap") for g in groups if g.get("PropertyGroupId") == RUN_OPTIONS_GROUP), None)
    if run_options != RUN_OPTIONS:
        return f"{PROPERTIES}: {RUN_OPTIONS_GROUP} is {run_options}, not {RUN_OPTIONS}"
    with archive.open(DEPS_JAR) as member, zipfile.ZipFile(member) as jar:
        missing = _jar_lacks(jar)
    return f"{DEPS_JAR} lacks {', '.join(missing)}" if missing else None


def _problem(zip_path: Path) -> str | None:
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return _lacks(archive)
    except (OSError, zipfile.BadZipFile, ValueError, AttributeError) as exc:  # unreadable zip, jar or JSON
        return f"is not a readable application zip ({exc})"


def check_package(zip_path: Path) -> None:
    """Refuse (PackageError, one line) an application zip the managed service could not run."""
    problem = _problem(zip_path)
    if problem:
        raise PackageError(f"{zip_path}: {problem}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build"], help="build the jar with Maven, then the zip, and check it")
    parser.add_argument("--out", type=Path, default=BUILD / "flink-app.zip")
    args = parser.parse_args()
    try:
        built = build(args.out)  # checked (check_package) before it is written
    except PackageError as exc:
        raise SystemExit(f"flink package: error: {exc}") from None
    print(f"{built} ({built.stat().st_size / 1e6:.1f} MB)")
