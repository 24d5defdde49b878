"""The local Flink job's supervisor keeps supervising whatever its progress probe runs into."""

from __future__ import annotations

from fraudstream.local import flink


class _Client:
    """kafka-python's clients as they behaved while the broker restarted: a request that trips over itself."""

    closed = 0

    def __init__(self, **kwargs):
        pass

    def list_consumer_group_offsets(self, group):
        raise AttributeError("'NoneType' object has no attribute 'invalid_metadata'")

    def close(self):
        _Client.closed += 1
        raise OSError("socket already gone")


def test_a_probe_that_fails_in_any_way_counts_as_no_stall_and_starts_over_with_new_clients(monkeypatch):
    monkeypatch.setattr(flink, "KafkaAdminClient", _Client)
    monkeypatch.setattr(flink, "KafkaConsumer", _Client)
    progress = flink._Progress("127.0.0.1:1", "group")
    # When the probe fails (twice) / Then it reports no stall, closes what it had, and does not raise
    assert progress.stalled_for() == 0.0
    assert progress.admin is None and progress.consumer is None and _Client.closed == 2
    assert progress.stalled_for() == 0.0
