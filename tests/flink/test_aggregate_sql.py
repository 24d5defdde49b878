"""flink_sql/aggregate_10m.sql on real Flink: hand-made cases, and equality with the batch SQL."""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from fraudstream import contract as c
from fraudstream.local.topics import LocalTopic
from fraudstream.offline import features
from fraudstream.offline.generate import generate
from fraudstream.offline.generate_config import GeneratorConfig
from tests.flink.conftest import flink_command, read_messages, run_local_job

T0 = 1_640_000_000.0  # 2021-12-20, before the generated sample
SAMPLE = GeneratorConfig(cards=100, transactions=12_000, fraud_ratio=0.02, seed=77,
                         start=datetime(2022, 3, 1, tzinfo=timezone.utc), end=datetime(2022, 3, 4, tzinfo=timezone.utc))


def _tx(card, offset, amount):
    return {c.CC_NUM: card, c.AMOUNT: amount, c.TRANS_TS: T0 + offset}


CRAFTED = [
    # card 1: exactly 10 minutes apart (inside), then 10 minutes and 1 second (outside)
    _tx(1, 0, 10.0), _tx(1, 600, 20.0), _tx(1, 1201, 30.0),
    # card 2, interleaved with card 1: amounts with cents whose float average drifts
    _tx(2, 1, 0.1), _tx(2, 2, 0.2), _tx(2, 3, 0.3),
    # card 3: a single transaction
    _tx(3, 5, 99.99),
]


@pytest.fixture(scope="module")
def event_time_run(tmp_path_factory):
    """One Flink run over the crafted cases, then a malformed line, then 12,000 generated transactions."""
    root = tmp_path_factory.mktemp("flink")
    table = generate(SAMPLE)
    batch = features.compute_features(features.connect(), table).to_pylist()
    sample = sorted(({c.CC_NUM: r[c.CC_NUM], c.AMOUNT: r[c.AMOUNT], c.TRANS_TS: r[c.TRANS_TS]} for r in batch),
                    key=lambda m: m[c.TRANS_TS])
    lines = [json.dumps(m) for m in sorted(CRAFTED, key=lambda m: m[c.TRANS_TS])]
    lines += ["this is not json", '{"cc_num": "not a number", "amount": 5.0, "trans_ts": 1640002000.0}',
              '{"cc_num": 9, "amount": "lots", "trans_ts": 1640002001.0}']
    lines += [json.dumps(m) for m in sample]
    (root / "transactions").mkdir()
    (root / "transactions" / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    messages = run_local_job(root / "transactions", root / "aggregates", mode="event")
    by_card = defaultdict(list)
    for m in messages:
        by_card[m[c.CC_NUM]].append(m)
    return by_card, batch


def test_counts_and_averages_on_the_10_minute_boundary(event_time_run):
    by_card, _ = event_time_run
    assert [(m[c.NUM_TRANS_LAST_10M], m[c.AVG_AMT_LAST_10M]) for m in by_card[1]] == [(1, 10.0), (2, 15.0), (1, 30.0)]
    assert [m[c.PREV_TRANS_TS] for m in by_card[1]] == [None, T0, T0 + 600]
    assert [m[c.TRANS_TS] for m in by_card[1]] == [T0, T0 + 600, T0 + 1201]


def test_averages_of_amounts_with_cents_do_not_drift(event_time_run):
    by_card, _ = event_time_run
    assert [m[c.AVG_AMT_LAST_10M] for m in by_card[2]] == [0.1, 0.15, 0.2]  # float: 0.15000000000000002
    assert (0.1 + 0.2) / 2 != 0.15


def test_cards_are_independent(event_time_run):
    by_card, _ = event_time_run
    assert [(m[c.NUM_TRANS_LAST_10M], m[c.PREV_TRANS_TS]) for m in by_card[3]] == [(1, None)]


def test_malformed_lines_are_skipped_without_stopping_the_job(event_time_run):
    by_card, batch = event_time_run
    assert 9 not in by_card
    # Flink emits one aggregate for transactions of one card with the same event time (README).
    peers = sum(n - 1 for n in _peer_counts(batch).values())
    assert sum(len(v) for v in by_card.values()) == len(CRAFTED) + len(batch) - peers


def _peer_counts(batch):
    seen = defaultdict(int)
    for row in batch:
        seen[(row[c.CC_NUM], row[c.TRANS_TS])] += 1
    return {key: n for key, n in seen.items() if n > 1}


def test_the_10_minute_columns_equal_the_batch_features_for_every_transaction(event_time_run):
    by_card, batch = event_time_run
    flink = defaultdict(list)
    for messages in by_card.values():
        for m in messages:
            flink[(m[c.CC_NUM], m[c.TRANS_TS])].append((m[c.NUM_TRANS_LAST_10M], m[c.AVG_AMT_LAST_10M], m[c.PREV_TRANS_TS]))
    assert len(batch) >= 10_000
    peers = _peer_counts(batch)
    assert len(peers) <= 0.001 * len(batch)  # same card, same second: rare, and left out (README)
    mismatches = 0
    peer_times = defaultdict(list)
    for card, ts in peers:
        peer_times[card].append(ts)
    for row in batch:
        key = (row[c.CC_NUM], row[c.TRANS_TS])
        if any(0 <= row[c.TRANS_TS] - ts <= c.WINDOW_10M_SECONDS for ts in peer_times[row[c.CC_NUM]]):
            flink.pop(key, None)  # a window holding same-second peers: left out (README)
            continue
        count, average, prev = flink[key].pop()
        gap = row[c.SECS_SINCE_PREV_TX]
        ok = count == row[c.NUM_TRANS_LAST_10M] and math.isclose(average, row[c.AVG_AMT_LAST_10M], rel_tol=1e-6)
        if gap not in (0.0, c.SECS_SINCE_PREV_TX_CAP):  # the previous transaction, where it is unambiguous
            ok = ok and prev is not None and math.isclose(row[c.TRANS_TS] - prev, gap)
        mismatches += not ok
    assert mismatches == 0
    crafted_cards = {m[c.CC_NUM] for m in CRAFTED}
    assert not any(v for (card, _), v in flink.items() if card not in crafted_cards)  # nothing extra


def test_processing_time_emits_each_aggregate_as_its_transaction_arrives(tmp_path):
    """Processing time, as the live pipeline runs: transactions arrive one by one, half a second apart."""
    topic = LocalTopic(tmp_path / "transactions", "transactions")
    job = subprocess.Popen(flink_command("--local", "--transactions", str(topic.directory), "--aggregates",
                                         str(tmp_path / "aggregates"), "--time-mode", "processing", "--watch", "0.2"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        sent = [_tx(5, 0, 1.0), _tx(6, 1, 50.0), _tx(5, 2, 2.0), _tx(5, 3, 6.0)]
        received = []
        topic.send_lines(["garbage line"])
        for i, message in enumerate(sent):
            topic.send([message])
            deadline = time.monotonic() + 120
            while len(received) <= i and time.monotonic() < deadline:
                time.sleep(0.2)
                received = read_messages(tmp_path / "aggregates") if (tmp_path / "aggregates").exists() else []
            assert len(received) == i + 1, f"no aggregate for transaction {i} within 120 s"
    finally:
        job.terminate()
        job.wait(timeout=30)
    card5 = [m for m in received if m[c.CC_NUM] == 5]
    assert [m[c.NUM_TRANS_LAST_10M] for m in card5] == [1, 2, 3]
    assert [m[c.AVG_AMT_LAST_10M] for m in card5] == [1.0, 1.5, 3.0]
    assert [m[c.PREV_TRANS_TS] for m in card5] == [None, T0, T0 + 2]
    assert [(m[c.NUM_TRANS_LAST_10M], m[c.PREV_TRANS_TS]) for m in received if m[c.CC_NUM] == 6] == [(1, None)]


def test_every_flink_row_is_an_aggregate_message_the_aggregate_handler_accepts(event_time_run):
    from fraudstream.online.messages import RecordRef, parse_aggregate

    by_card, _ = event_time_run
    for messages in by_card.values():
        for m in messages:
            aggregate = parse_aggregate(RecordRef(c.AGGREGATES_TOPIC, 0, 0), m)
            assert set(aggregate.as_record()) == set(c.STREAMING_FEATURE_GROUP_COLUMNS)
