"""The local pipeline's Kafka broker: real Apache Kafka (KRaft), formatted once, kept across restarts."""

from __future__ import annotations

import json
import socket

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from fraudstream.local import broker as broker_module
from fraudstream.local.broker import BrokerError, KafkaBroker
from tests.support.kafka import new_topic_name, produce, read_all

pytestmark = pytest.mark.kafka  # the real broker's tests


def test_topics_get_the_partition_count_and_records_keep_their_card_key(kafka_broker):
    topic = new_topic_name("t")
    kafka_broker.create_topics([topic])
    kafka_broker.create_topics([topic])  # again: nothing changes
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 3
    # One card's transactions land on one partition, in order
    places = produce(kafka_broker.bootstrap, topic, [{"n": i} for i in range(6)], keys=[4111] * 6)
    assert len({partition for partition, _ in places}) == 1 and [o for _, o in places] == list(range(6))


def test_the_tls_listener_accepts_a_client_that_trusts_its_ca(kafka_broker):
    topic = new_topic_name("tls")
    kafka_broker.create_topics([topic])
    producer = KafkaProducer(bootstrap_servers=kafka_broker.tls_bootstrap, security_protocol="SSL",
                             ssl_cafile=str(kafka_broker.ca_file))
    try:
        producer.send(topic, b'{"over": "tls"}').get(timeout=30)
    finally:
        producer.close()
    assert [r["value"] for r in read_all(kafka_broker.bootstrap, topic)] == [{"over": "tls"}]


def test_a_restarted_broker_keeps_its_topics_records_and_ports(tmp_path):
    broker = KafkaBroker(tmp_path / "kafka", tmp_path / "logs", partitions=2)
    try:
        broker.start()
        broker.create_topics(["kept"])
        produce(broker.bootstrap, "kept", [{"n": 1}])
        address = broker.bootstrap
        broker.stop()
        assert not broker.running
        broker.start()  # no second format: the data directory is kept
        assert broker.bootstrap == address
        assert [r["value"] for r in read_all(broker.bootstrap, "kept")] == [{"n": 1}]
    finally:
        broker.stop()


def test_a_port_another_process_takes_before_the_first_start_binds_it_is_replaced(tmp_path, monkeypatch):
    # Given a new broker whose chosen port another process takes after the check, before the JVM binds it
    broker = KafkaBroker(tmp_path / "kafka", tmp_path / "logs", partitions=1)
    chosen = broker.ports["broker"]
    monkeypatch.setattr(broker_module, "port_is_free", lambda _port: True)  # the check passes, the bind will not
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", chosen))
            taken.listen()
            # When it starts
            broker.start()
            # Then it started on other ports, kept for its restarts, and answers there
            assert broker.ports["broker"] != chosen and broker.running
            assert json.loads((tmp_path / "kafka" / "ports.json").read_text())["broker"] == broker.ports["broker"]
            broker.create_topics(["after-the-race"])
    finally:
        broker.stop()


def test_a_port_in_use_after_a_first_start_is_one_clear_error(tmp_path):
    # Given a broker that started once (its clients know its ports), then stopped
    broker = KafkaBroker(tmp_path / "kafka", tmp_path / "logs", partitions=1)
    broker.start()
    broker.stop()
    # When another process holds its port, the restart fails with one line naming it
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", broker.ports["broker"]))
        taken.listen()
        with pytest.raises(BrokerError, match=f"port.*{broker.ports['broker']}.*already in use"):
            broker.start()
    assert not broker.running


def test_missing_java_or_jars_say_what_to_install(tmp_path, monkeypatch):
    broker = KafkaBroker(tmp_path / "kafka", tmp_path / "logs")
    monkeypatch.setattr(broker_module.shutil, "which", lambda _name: None)
    with pytest.raises(BrokerError, match="java is not installed"):
        broker.start()
    monkeypatch.setattr(broker_module, "CLASSPATH_FILE", tmp_path / "none.txt")
    with pytest.raises(BrokerError, match="make kafka-broker"):
        broker_module.classpath(tmp_path / "none.txt")
