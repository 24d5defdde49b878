"""A real Kafka broker for tests (the local pipeline's own, fraudstream/local/broker.py), and small clients.

Tests share one broker per session and keep apart by topic names; the broker stops when the session ends.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.local.broker import KafkaBroker, TlsListener
from fraudstream.online.verdict_topic import source_of


def new_topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, values: list, keys: list | None = None) -> list[tuple[int, int]]:
    """Send ``values`` (dicts as JSON, bytes as they are, None as a record without a value) in order; returns
    (partition, offset) of each."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_in_flight_requests_per_connection=1)
    try:
        futures = []
        for i, value in enumerate(values):
            raw = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
            key = None if keys is None else str(keys[i]).encode()
            futures.append(producer.send(topic, key=key, value=raw))
        producer.flush(timeout=60)
        return [(m.partition, m.offset) for m in (f.get(timeout=60) for f in futures)]
    finally:
        producer.close(timeout=10)


def read_all(bootstrap: str, topic: str) -> list[dict]:
    """Every record now on ``topic`` (all partitions, each in offset order), as key, value and place."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends, starts = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
        expected = sum(ends[tp] - starts[tp] for tp in partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        deadline = time.monotonic() + 60
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return [{"partition": r.partition, "offset": r.offset, "key": r.key, "value": json.loads(r.value)}
                for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    finally:
        consumer.close()


def verdict_sources(bootstrap: str) -> list[RecordRef]:
    """The transaction place each record of the verdicts topic names, in the topic's order."""
    return [source_of(r["value"]) for r in read_all(bootstrap, c.VERDICTS_TOPIC)]


def make_certificate(directory: Path) -> tuple[TlsListener, Path]:
    """A CA and a server certificate for localhost/127.0.0.1 (PEM); returns the listener and the CA file."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fraudstream test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_text(pem(ca))
    return TlsListener(certificate_chain=pem(cert) + pem(ca), private_key=key_pem), ca_file


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """One real broker for the session, with a TLS listener too (its CA file is ``broker.ca_file``)."""
    root = tmp_path_factory.mktemp("kafka")
    tls, ca_file = make_certificate(root / "tls")
    broker = KafkaBroker(root / "broker", root / "logs", partitions=3, tls=tls)
    broker.start()
    broker.ca_file = ca_file
    yield broker
    broker.stop()
