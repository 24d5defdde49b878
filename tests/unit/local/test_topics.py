"""The local topic: whole segments only, each record read once with a stable offset."""

from __future__ import annotations

from fraudstream.local.topics import LocalConsumer, LocalTopic


def test_records_are_read_once_in_segment_order_with_consecutive_offsets(tmp_path):
    topic = LocalTopic(tmp_path / "t", "t")
    consumer = LocalConsumer(topic)
    topic.send([{"a": 1}, {"a": 2}])
    assert [offset for offset, _ in consumer.poll()] == [0, 1]
    topic.send([{"a": 3}])
    assert consumer.poll() == [(2, '{"a":3}')]
    assert consumer.poll() == []


def test_segments_being_written_are_not_read(tmp_path):
    topic = LocalTopic(tmp_path / "t", "t")
    (topic.directory / ".segment-in-progress.jsonl").write_text('{"a": 1}\n')
    (topic.directory / "_flink-in-progress").write_text('{"a": 1}\n')
    (topic.directory / "part-123-0-0").write_text('{"b": 2}\n\n')  # a committed Flink file
    assert LocalConsumer(topic).poll() == [(0, '{"b": 2}')]
