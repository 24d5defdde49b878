"""A real Apache Kafka broker on this machine: KRaft mode, one node, loopback ports, data under the work directory.

The jars come from Maven (`make kafka-broker` resolves fraudstream/local/kafka/pom.xml, the 3.8 line of the
stack's MSK default, and writes their classpath to build/kafka/classpath.txt). The broker is formatted on
its first start, keeps its data across restarts, and runs under a watchdog (local/processes.py), so it
never outlives the process that started it. Topics are created through the admin API with the stack's
partition count. Optionally it also listens with TLS on a second port (certificate and key in PEM).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from fraudstream.local.processes import Supervised
from fraudstream.paths import BUILD

CLASSPATH_FILE = BUILD / "kafka" / "classpath.txt"
HEAP = "-Xmx192m"
START_TIMEOUT_S = 60.0
# The broker's own log goes to a file; these keep it small and quiet.
LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/kafka.log
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=1
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
"""


class BrokerError(RuntimeError):
    """The broker cannot start: Java or its jars are missing, a port is taken, or it did not come up."""


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener: the server certificate chain and its PKCS#8 key, both PEM text."""

    certificate_chain: str
    private_key: str


PORT_ATTEMPTS = 3  # sets of fresh ports tried when another process takes one first


class PortTaken(Exception):
    """A port the broker is to bind is in use (str: which)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def classpath(path: Path = CLASSPATH_FILE) -> str:
    if not path.is_file():
        raise BrokerError(f"{path} is missing: run `make kafka-broker` (it fetches Apache Kafka through Maven)")
    jars = [jar for jar in path.read_text(encoding="utf-8").strip().split(":") if jar]
    missing = [jar for jar in jars if not Path(jar).is_file()]
    if not jars or missing:
        raise BrokerError(f"{path} names jars that are not there ({len(missing)} missing): run `make kafka-broker`")
    return ":".join(jars)


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise BrokerError("java is not installed: the Kafka broker (and Flink) need Java 17 on the PATH")
    return found


class KafkaBroker:
    """Start with start(), stop with stop(); ``bootstrap`` is the plaintext address, ``tls_bootstrap`` the TLS one."""

    def __init__(self, directory: Path, log_dir: Path, partitions: int = 3, tls: TlsListener | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.directory, self.log_dir, self.partitions, self.tls, self.log = Path(directory), Path(log_dir), partitions, tls, log
        self.data_dir = self.directory / "data"
        self._output_seen: dict[Path, int] = {}
        self.ports = self._ports()
        self.process: Supervised | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['broker']}"

    @property
    def tls_bootstrap(self) -> str | None:
        return f"localhost:{self.ports['tls']}" if self.tls else None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the broker (formatting its storage on the first start) and wait until it answers.

        Ports chosen for this start (a new work directory) are free when chosen, but another process may take one
        before the JVM binds it: then new ones are chosen and the start tried again. Ports a previous start used
        are kept (clients remember them), so there a taken port is an error."""
        fresh = not (self.data_dir / "meta.properties").is_file()  # never started: no client knows its ports
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start(timeout)
            except PortTaken as taken:
                if not fresh or attempt == PORT_ATTEMPTS:
                    raise BrokerError(f"cannot start the Kafka broker: port(s) {taken} on 127.0.0.1 already in use (another "
                                      f"pipeline on {self.directory}? stop it, or remove {self.directory})") from None
                self.log(f"port(s) {taken} taken before the broker bound them; choosing others")
                self.ports = self._ports(choose=True)

    def _start(self, timeout: float) -> None:
        cp, java_bin = classpath(), java()
        taken = [f"{name} {port}" for name, port in self.ports.items() if not port_is_free(port)]
        if taken:
            raise PortTaken(", ".join(taken))
        config = self._write_config()
        logging = [f"-Dlog4j.configuration=file:{self._write_log4j()}", f"-Dkafka.logs.dir={self.log_dir}"]
        if not (self.data_dir / "meta.properties").is_file():
            self._format(java_bin, cp, logging, config)
        command = [java_bin, HEAP, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError",
                   "-Djava.awt.headless=true", *logging, "-cp", cp, "kafka.Kafka", str(config)]
        self._output_seen = {path: path.stat().st_size if path.is_file() else 0 for path in self._outputs()}
        self.process = Supervised("kafka", command, self.log_dir / "kafka.out")
        self.process.start()
        self._wait_until_ready(timeout)
        self.log(f"Kafka broker on {self.bootstrap}" + (f" and {self.tls_bootstrap} (TLS)" if self.tls else "")
                 + f"; log: {self.log_dir / 'kafka.log'}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- topics ---------------------------------------------------------------------------------

    def create_topics(self, names: list[str], partitions: int | None = None) -> None:
        """Create the topics that do not exist yet, with ``partitions`` each (default: the broker's)."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="fraudstream-local-admin",
                                 request_timeout_ms=20_000)
        try:
            existing = set(admin.list_topics())
            new = [NewTopic(name, partitions or self.partitions, 1) for name in names if name not in existing]
            if new:
                admin.create_topics(new)
        finally:
            admin.close()

    # --- internals ------------------------------------------------------------------------------

    def _ports(self, choose: bool = False) -> dict[str, int]:
        """The ports of this work directory: kept across restarts (clients remember them), chosen once (or again,
        with ``choose``, while no start has bound them)."""
        path = self.directory / "ports.json"
        names = ["broker", "controller", *(["tls"] if self.tls else [])]
        if path.is_file() and not choose:
            ports = json.loads(path.read_text(encoding="utf-8"))
            if set(names) <= set(ports):
                return {name: ports[name] for name in names}
        ports = {name: free_port() for name in names}
        self.directory.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports), encoding="utf-8")
        return ports

    def _write_config(self) -> Path:
        listeners = [f"PLAINTEXT://127.0.0.1:{self.ports['broker']}", f"CONTROLLER://127.0.0.1:{self.ports['controller']}"]
        advertised = [f"PLAINTEXT://127.0.0.1:{self.ports['broker']}"]
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.ports['controller']}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",  # topics are created with the stack's partition count
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),  # on-heap; the default 128 MiB is the whole heap
        }
        if self.tls:
            listeners.append(f"SSL://localhost:{self.ports['tls']}")
            advertised.append(f"SSL://localhost:{self.ports['tls']}")
            settings.update({"ssl.keystore.type": "PEM", "ssl.client.auth": "none",
                             "ssl.keystore.certificate.chain": _one_line(self.tls.certificate_chain),
                             "ssl.keystore.key": _one_line(self.tls.private_key)})
        settings["listeners"] = ",".join(listeners)
        settings["advertised.listeners"] = ",".join(advertised)
        path = self.directory / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()), encoding="utf-8")
        return path

    def _write_log4j(self) -> Path:
        path = self.directory / "log4j.properties"
        path.write_text(LOG4J, encoding="utf-8")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return path

    def _format(self, java_bin: str, cp: str, logging: list[str], config: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode().replace("-", "A")
        result = subprocess.run([java_bin, *logging, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                                 "-c", str(config)], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise BrokerError(f"cannot format the Kafka broker's storage in {self.data_dir}: "
                              f"{(result.stderr or result.stdout).strip()[-500:]}")

    def _wait_until_ready(self, timeout: float) -> None:
        """Until the broker answers a metadata request (a port open is not enough: the controller elects first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.running:
                returncode = self.process.returncode
                self.stop()
                if self._bind_failed():
                    raise PortTaken(", ".join(f"{name} {port}" for name, port in self.ports.items()))
                raise BrokerError(f"the Kafka broker exited with code {returncode}; "
                                  f"see {self.log_dir / 'kafka.log'} and {self.log_dir / 'kafka.out'}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports["broker"]), timeout=0.5):
                    pass
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5_000,
                                         api_version_auto_timeout_ms=5_000)
                admin.describe_cluster()
                admin.close()
                return
            except (OSError, KafkaError, ValueError):
                time.sleep(0.2)
        self.stop()
        raise BrokerError(f"the Kafka broker did not answer within {timeout:.0f} s; see {self.log_dir / 'kafka.log'}")


    def _outputs(self) -> tuple[Path, Path]:
        return self.log_dir / "kafka.out", self.log_dir / "kafka.log"

    def _bind_failed(self) -> bool:
        """Whether the broker's output since this start says it could not bind a port."""
        for path in self._outputs():
            if path.is_file():
                with path.open("rb") as output:
                    output.seek(self._output_seen.get(path, 0))
                    if b"Address already in use" in output.read():
                        return True
        return False


def _one_line(pem: str) -> str:
    """PEM text as one properties value: java.util.Properties turns the escaped newlines back."""
    return pem.strip().replace("\n", "\\n")
