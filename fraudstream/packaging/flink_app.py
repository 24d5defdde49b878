"""The Managed Service for Apache Flink application zip: main.py, the SQL, and one dependency jar.

The Kafka connector, kafka-clients and the MSK IAM auth library come from a Maven repository at
build time, each checked against the SHA-256 pinned in flink_sql/jars.lock.json and kept in a
cache, then merged into lib/fraudstream-flink-deps.jar (service files concatenated, signatures
dropped: the unshaded connector plus plain kafka-clients is what lets the IAM callback handler
load). A jar whose checksum differs is refused and never cached.

`lock` records the SHA-256 of each jar after checking it against the SHA-1 the repository
publishes beside it; a maintainer runs it once with network access, reviews and commits the file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from fraudstream.paths import BUILD, FLINK_MAIN, FLINK_SQL

LOCK_FILE = FLINK_SQL / "jars.lock.json"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fraudstream" / "maven"
DEPS_JAR = "lib/fraudstream-flink-deps.jar"
ENTRY_POINT = "main.py"
# The group the managed service reads to find the entry point and the jar (the CDK app sets it).
RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options"
RUN_OPTIONS = {"python": ENTRY_POINT, "jarfile": DEPS_JAR}


@functools.cache
def entry_point() -> ModuleType:
    """flink_sql/main.py as a module, for its names: property group and keys, time modes, the ready marker.

    It imports PyFlink only when it runs a job, so this works in any environment (the CDK app, the CLI).
    """
    spec = importlib.util.spec_from_file_location("fraudstream_flink_main", FLINK_MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str
    classifier: str = ""

    @property
    def key(self) -> str:
        return f"{self.group}:{self.name}:{self.version}" + (f":{self.classifier}" if self.classifier else "")

    def path(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.group.replace('.', '/')}/{self.name}/{self.version}/{self.name}-{self.version}{suffix}.jar"


# Flink 1.20 runtime: Kafka connector 3.4.0-1.20 (for Flink 1.20), its kafka-clients, the MSK IAM library.
# The IAM library's plain jar leaves out the AWS SDK it calls (declared as Maven dependencies, which
# nothing here resolves); its "all" classifier bundles them, so the login module finds its classes.
ARTIFACTS = (
    Artifact("org.apache.flink", "flink-connector-kafka", "3.4.0-1.20"),
    Artifact("org.apache.kafka", "kafka-clients", "3.4.0"),
    Artifact("software.amazon.msk", "aws-msk-iam-auth", "2.2.0", classifier="all"),
    # The S3 filesystem (s3a://) for the transactions archive, at the managed runtime's Flink version,
    # bundled in the application jar as AWS's own Managed Flink S3 sink examples do.
    Artifact("org.apache.flink", "flink-s3-fs-hadoop", "1.20.0"),
)


class PackageError(RuntimeError):
    """A jar is missing from the lock, cannot be fetched, or does not match its pinned checksum."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise PackageError(f"cannot download {url}: {exc}") from None


def fetch(artifact: Artifact, pinned_sha256: str, repository: str = MAVEN_CENTRAL, cache: Path = DEFAULT_CACHE) -> Path:
    """The artifact's jar from the cache, or downloaded and verified into it."""
    cached = cache / artifact.path()
    if cached.is_file() and sha256(cached) == pinned_sha256:
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        _download(f"{repository.rstrip('/')}/{artifact.path()}", partial)
        actual = sha256(partial)
        if actual != pinned_sha256:
            raise PackageError(f"{artifact.key}: SHA-256 {actual} does not match the pinned {pinned_sha256}")
        os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)
    return cached


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    pins = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    missing = [a.key for a in ARTIFACTS if a.key not in pins]
    if missing:
        raise PackageError(f"{path} has no SHA-256 for {', '.join(missing)}: run `make flink-lock` with network "
                           "access, review the file and commit it")
    return pins


def lock(repository: str = MAVEN_CENTRAL, path: Path = LOCK_FILE, cache: Path = DEFAULT_CACHE) -> dict[str, str]:
    """Pin the SHA-256 of every artifact, after checking each download against the repository's SHA-1."""
    pins = {}
    with tempfile.TemporaryDirectory() as tmp:
        for artifact in ARTIFACTS:
            jar, published = Path(tmp) / "a.jar", Path(tmp) / "a.jar.sha1"
            _download(f"{repository.rstrip('/')}/{artifact.path()}", jar)
            _download(f"{repository.rstrip('/')}/{artifact.path()}.sha1", published)
            expected = published.read_text(encoding="utf-8").split()[0].strip().lower()
            if hashlib.sha1(jar.read_bytes()).hexdigest() != expected:  # noqa: S324 - Maven publishes SHA-1
                raise PackageError(f"{artifact.key}: download does not match the repository's SHA-1")
            pins[artifact.key] = sha256(jar)
    path.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return pins


def merge_jars(jars: list[Path], target: Path) -> None:
    """One jar from several: first copy of each class wins, META-INF/services files are concatenated,
    signature files are dropped (they would not match the merged jar)."""
    services: dict[str, list[bytes]] = {}
    seen: set[str] = set()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for jar in jars:
            with zipfile.ZipFile(jar) as source:
                for info in source.infolist():
                    name = info.filename
                    upper = name.upper()
                    if info.is_dir() or (upper.startswith("META-INF/") and upper.endswith((".SF", ".DSA", ".RSA"))):
                        continue
                    if name.startswith("META-INF/services/"):
                        services.setdefault(name, []).append(source.read(name).rstrip(b"\n"))
                    elif name not in seen:
                        seen.add(name)
                        out.writestr(info, source.read(name))
        for name, parts in services.items():
            out.writestr(name, b"\n".join(parts) + b"\n")


def build(out: Path, repository: str = MAVEN_CENTRAL, cache: Path = DEFAULT_CACHE, lock_file: Path = LOCK_FILE) -> Path:
    """Write the application zip: main.py, the SQL files, the runtime properties and the merged jar."""
    pins = read_lock(lock_file)
    jars = [fetch(artifact, pins[artifact.key], repository, cache) for artifact in ARTIFACTS]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / "deps.jar"
        merge_jars(jars, merged)
        partial = out.with_name(f".{out.name}.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for source in sorted(FLINK_SQL.glob("*.sql")) + [FLINK_SQL / "main.py", FLINK_SQL / "application_properties.json"]:
                archive.write(source, source.name)
            archive.write(merged, DEPS_JAR)
        os.replace(partial, out)
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "lock"])
    parser.add_argument("--out", type=Path, default=BUILD / "flink-app.zip")
    parser.add_argument("--repository", default=MAVEN_CENTRAL)
    args = parser.parse_args()
    try:
        print(build(args.out, args.repository) if args.command == "build" else json.dumps(lock(args.repository), indent=2))
    except PackageError as exc:
        raise SystemExit(f"flink package: error: {exc}") from None
