"""flink_sql/features_in_order.sql and its companions on real Flink over Kafka: every valid transaction comes out
once with its own features, equal to the batch SQL's; bursts count in order; quiet streams are not left waiting;
late transactions are scored and marked; refused records are reported."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from fraudstream import contract as c
from fraudstream.offline import features
from fraudstream.offline.generate import generate
from fraudstream.offline.generate_config import GeneratorConfig
from fraudstream.online.features import model_features
from fraudstream.contract import RecordRef
from fraudstream import flink_properties
from fraudstream.flink_properties import EventTime
from fraudstream.packaging.flink_app import tick_keys
from fraudstream.online.messages import parse_transaction_features
from tests.support.flink_job import Topics, explain, properties_file, run_bounded, start_unbounded
from tests.support.kafka import produce, read_all
from tests.support.wait import wait_for

pytestmark = [pytest.mark.flink, pytest.mark.kafka]

T0 = 1_640_000_000.0  # 2021-12-20, before the generated sample
SAMPLE = GeneratorConfig(cards=100, transactions=12_000, fraud_ratio=0.02, seed=77,
                         start=datetime(2022, 3, 1, tzinfo=timezone.utc), end=datetime(2022, 3, 11, tzinfo=timezone.utc))


def _tx(card, offset, amount, **extra):
    return {c.CC_NUM: card, c.AMOUNT: amount, c.TRANS_TS: T0 + offset, **extra}


CRAFTED = [
    # card 1: exactly 10 minutes apart (inside), then 10 minutes and 1 second (outside)
    _tx(1, 0, 10.0), _tx(1, 600, 20.0), _tx(1, 1201, 30.0),
    # card 2: amounts with cents whose float average drifts
    _tx(2, 1, 0.1), _tx(2, 2, 0.2), _tx(2, 3, 0.3),
    # card 3: five transactions of one millisecond (a burst), then one 0.4 ms later: the same millisecond too
    *[_tx(3, 5, 1.0 + i) for i in range(5)], _tx(3, 5.0004, 100.0),
]
MALFORMED = [b"this is not json", b'{"cc_num": "not a number", "amount": 5.0, "trans_ts": 1640002000.0}',
             b'{"cc_num": 9, "amount": "lots", "trans_ts": 1640002001.0}', b"[1, 2]"]


@pytest.fixture(scope="module")
def bounded_run(kafka_broker, flink_app, tmp_path_factory):
    """One bounded Flink run (three partitions, keyed by card) over the crafted cases, malformed values, then
    12,000 generated transactions in (time, tid) order; returns the messages per card, the invalid reports, the
    places of the malformed values and the batch rows."""
    topics = Topics(kafka_broker)
    batch = features.compute_features(features.connect(), generate(SAMPLE)).to_pylist()
    sample = sorted(({c.CC_NUM: r[c.CC_NUM], c.AMOUNT: r[c.AMOUNT], c.TRANS_TS: r[c.TRANS_TS], c.TID: r[c.TID]}
                     for r in batch), key=lambda m: (c.event_ms(m[c.TRANS_TS]), m[c.TID]))
    values = [*CRAFTED, *MALFORMED, *sample]
    places = produce(kafka_broker.bootstrap, topics.transactions, values,
                     keys=[v[c.CC_NUM] if isinstance(v, dict) else 9 for v in values])
    run_bounded(flink_app, topics.properties(tmp_path_factory.mktemp("props"), bounded="true"))
    by_card = defaultdict(list)
    for record in read_all(kafka_broker.bootstrap, topics.features):  # each partition in offset order
        by_card[record["value"][c.CC_NUM]].append(record["value"])
    invalid = [record["value"] for record in read_all(kafka_broker.bootstrap, topics.invalid)]
    malformed = places[len(CRAFTED):len(CRAFTED) + len(MALFORMED)]
    return by_card, invalid, malformed, batch


def test_counts_sums_and_previous_on_the_10_minute_boundary(bounded_run):
    by_card = bounded_run[0]
    assert [(m[c.NUM_TRANS_LAST_10M], m[c.AMT_SUM_LAST_10M]) for m in by_card[1]] == [(1, 10), (2, 30), (1, 30)]
    assert [m[c.PREV_EVENT_MS] for m in by_card[1]] == [None, c.event_ms(T0), c.event_ms(T0 + 600)]


def test_sums_are_exact_decimals(bounded_run):
    by_card = bounded_run[0]
    assert [m[c.AMT_SUM_LAST_10M] for m in by_card[2]] == [0.1, 0.3, 0.6]  # 0.1 + 0.2 is 0.30000000000000004


def test_transactions_of_one_millisecond_count_one_after_another(bounded_run):
    card3 = bounded_run[0][3]
    assert [m[c.NUM_TRANS_LAST_10M] for m in card3] == [1, 2, 3, 4, 5, 6]
    assert [m[c.NUM_TRANS_TODAY] for m in card3] == [1, 2, 3, 4, 5, 6]
    assert [m[c.AMT_SUM_LAST_10M] for m in card3] == [1, 3, 6, 10, 15, 115]
    assert not any(m[c.LATE] for m in card3)


def test_refused_records_are_reported_with_their_place_and_reason(bounded_run):
    by_card, invalid, malformed, _ = bounded_run
    assert 9 not in by_card
    reported = {(r[c.PARTITION], r[c.OFFSET]): r[c.REASON] for r in invalid}
    assert set(reported) == set(malformed)
    assert [reported[place] for place in malformed] == [
        "value is not a JSON object", "cc_num is missing or not a card number",
        "amount is missing or not a number from 0 to 10000000", "value is not a JSON object"]
    assert all(set(r) == {c.TOPIC, c.PARTITION, c.OFFSET, c.REASON} for r in invalid)  # never the content


def test_every_feature_equals_the_batch_definition_for_every_transaction(bounded_run):
    """The promise: the features built from Flink's message equal the batch SQL's, bit for bit, for each of
    12,000 transactions over ten days, the 1-week ones included: Flink saw every day of the sample, so its totals
    of the 7 days before each transaction's day are the week with no nightly record at all
    (tests/unit/online/test_features_match_batch.py combines them with nightly records of any age)."""
    by_card, _, _, batch = bounded_run
    flink, messages = {}, {}
    for ms in by_card.values():
        for m in ms:
            if m.get(c.TID) is not None:
                messages[m[c.TID]] = m
                flink[m[c.TID]] = model_features(parse_transaction_features(RecordRef("f", 0, 0), m), None)
    assert len(batch) >= 10_000 and len(flink) == len(batch)
    names = (c.AMOUNT, *c.AGGREGATE_COLUMNS, *c.ALL_FEATURES)
    mismatches = [(row[c.TID], name, flink[row[c.TID]][name], row[name]) for row in batch for name in names
                  if flink[row[c.TID]][name] != row[name]]
    assert mismatches[:5] == [] and len(mismatches) == 0
    # and the comparison reached back a whole week: the 7th day before is in it, the 8th (same bucket as the
    # transaction's own day, nine days modulo 9) is not
    assert sum(m[c.NUM_TRANS_DAYS_BEFORE][6] > 0 for m in messages.values()) > 1_000
    day = {tid: c.event_ms(row[c.TRANS_TS]) // c.MS_PER_DAY for row in batch for tid in [row[c.TID]]}
    per_day = defaultdict(int)
    for row in batch:
        per_day[(row[c.CC_NUM], day[row[c.TID]])] += 1
    assert all(m[c.NUM_TRANS_DAYS_BEFORE] == [per_day[(m[c.CC_NUM], day[t] - k)] for k in range(1, 8)]
               for t, m in messages.items())




def test_a_quiet_stream_a_late_transaction_and_bad_records_all_come_out(kafka_broker, flink_app, topics, tmp_path):
    """Live, as the pipeline runs it: the time ticks move event time when nothing else arrives, so the last
    transaction is not left waiting; one stamped a minute behind is scored and marked late; refused records
    are reported."""
    job = start_unbounded(flink_app, topics.properties(tmp_path), tmp_path / "flink.log")
    now = time.time()
    try:
        produce(kafka_broker.bootstrap, topics.transactions, [_tx(5, 0, 1.0) | {c.TRANS_TS: now}], keys=[5])
        first = wait_for(lambda: read_all(kafka_broker.bootstrap, topics.features),
                         message=f"nothing emitted on a quiet stream; see {tmp_path / 'flink.log'}")
        assert [m["value"][c.CC_NUM] for m in first] == [5]
        produce(kafka_broker.bootstrap, topics.transactions,
                [_tx(5, 0, 2.0) | {c.TRANS_TS: now - 60}, _tx(6, 0, 3.0) | {c.TRANS_TS: now + 1}, b"{oops", None],
                keys=[5, 6, 7, 7])
        received = wait_for(lambda: len(read_all(kafka_broker.bootstrap, topics.features)) >= 3
                             and len(read_all(kafka_broker.bootstrap, topics.invalid)) >= 2
                             and read_all(kafka_broker.bootstrap, topics.features))
    finally:
        job.stop()
    values = sorted((m["value"] for m in received), key=lambda m: m[c.TRANS_TS])
    assert [(m[c.CC_NUM], m[c.LATE]) for m in values] == [(5, True), (5, False), (6, False)]
    late = values[0]
    assert (late[c.NUM_TRANS_LAST_10M], late[c.PREV_EVENT_MS]) == (1, None)  # on itself alone
    reasons = sorted(r["value"][c.REASON] for r in read_all(kafka_broker.bootstrap, topics.invalid))
    assert reasons == ["record has no value", "value is not a JSON object"]


def _partition(key, partitions: int) -> int:
    """Where Kafka's default partitioner puts a record keyed by ``key`` (as produce() keys it)."""
    from kafka.partitioner.default import murmur2

    return (murmur2(str(key).encode()) & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize("event_time", [EventTime(tick_delay_ms=3000), EventTime(max_out_of_orderness_s=3)],
                         ids=["tick-delay", "out-of-orderness"])
def test_a_burst_landing_on_its_partitions_out_of_order_is_scored_on_time(kafka_broker, flink_app, topics, tmp_path,
                                                                         event_time):
    """A producer's burst reaches its partitions in any order. The time tick that passes a transaction is written
    tick.delay.ms (or the out-of-orderness, when longer) after Flink read it, so an earlier-stamped transaction that
    lands on another partition in between comes before that tick in its partition: on time, with its own features,
    not late. And then the stream is quiet: the tick moves the watermark past both (with an out-of-orderness it
    carries the newest time plus it), so neither waits for a later transaction."""
    first, second = 5, next(card for card in range(6, 100)
                            if _partition(card, kafka_broker.partitions) != _partition(5, kafka_broker.partitions))
    job = start_unbounded(flink_app, topics.properties(tmp_path, event_time=event_time), tmp_path / "flink.log")
    now = time.time()
    try:
        # Given a transaction Flink has read (the refused record sent after it on its partition is reported)
        produce(kafka_broker.bootstrap, topics.transactions,
                [_tx(first, 0, 1.0) | {c.TRANS_TS: now + 1}, {c.CC_NUM: "not a card", c.AMOUNT: 1.0, c.TRANS_TS: now}],
                keys=[first, first])
        wait_for(lambda: read_all(kafka_broker.bootstrap, topics.invalid),
                 message=f"the refused record was not reported; see {tmp_path / 'flink.log'}")
        # When a transaction stamped a second earlier lands on another partition only now
        [(partition, offset)] = produce(kafka_broker.bootstrap, topics.transactions,
                                        [_tx(second, 0, 2.0) | {c.TRANS_TS: now}], keys=[second])
        received = wait_for(lambda: len(read_all(kafka_broker.bootstrap, topics.features)) >= 2
                             and read_all(kafka_broker.bootstrap, topics.features),
                             message=f"not both scored; see {tmp_path / 'flink.log'}")
    finally:
        job.stop()
    # Then both are on time, each on its own card's features
    values = sorted((m["value"] for m in received), key=lambda m: m[c.TRANS_TS])
    assert [(m[c.CC_NUM], m[c.LATE], m[c.NUM_TRANS_LAST_10M]) for m in values] == [(second, False, 1), (first, False, 1)]
    # because the first tick on that partition came after it
    ticks = [r["offset"] for r in read_all(kafka_broker.bootstrap, topics.transactions)
             if r["partition"] == partition and c.TICK_MS in r["value"]]
    assert ticks and min(ticks) > offset


def test_the_tick_keys_are_spread_without_a_join_whose_state_expires(flink_app, tmp_path):
    """The job keeps its state table.exec.state.ttl (8 days) after its last write. The ticks go to one key per
    partition: from a join with a VALUES table, those key rows were written once, when the job started, and
    expired with that TTL, after which no tick was written again (and every tick was kept 8 days in the join's
    state). From an UNNEST of an array each row carries, a stateless Correlate, they are written as long as the job
    runs. The plan is read with main.py --explain (nothing is submitted, no broker is reached)."""
    group = flink_properties.runtime_properties("127.0.0.1:9", "tx", "feat", "inv", ticks_keys=tick_keys(3),
                                                kafka_security="plaintext")
    plan = explain(flink_app, properties_file(tmp_path / "properties.json", group))
    plan = plan[plan.index("== Optimized Execution Plan =="):]
    ticks = plan[plan.index("Sink(table=[default_catalog.default_database.time_ticks]"):]
    ticks = ticks[:ticks.index("\n\n")]  # the ticks' branch of the optimized plan, down to its sources
    assert "Correlate(" in ticks and "UNNEST" in ticks.upper()
    assert "Join(" not in ticks and "Values(" not in ticks


def test_with_twelve_partitions_each_gets_its_own_tick(kafka_broker, flink_app, tmp_path):
    """A stack may set more partitions (context topicPartitions): every one gets ticks, under its own key (they
    differ in length, tick-0 and tick-10: a key padded to the longest would hash to another partition)."""
    topics = Topics(kafka_broker, partitions=12)
    job = start_unbounded(flink_app, topics.properties(tmp_path), tmp_path / "flink.log")

    def ticks() -> list[dict]:
        return [r for r in read_all(kafka_broker.bootstrap, topics.transactions) if c.TICK_MS in r["value"]]

    try:
        produce(kafka_broker.bootstrap, topics.transactions, [_tx(5, 0, 1.0) | {c.TRANS_TS: time.time()}], keys=[5])
        written = wait_for(lambda: (found := ticks()) and len({r["partition"] for r in found}) == 12 and found,
                           message=f"not every partition got a tick; see {tmp_path / 'flink.log'}")
    finally:
        job.stop()
    assert {r["key"] for r in written} == {key.encode() for key in tick_keys(12)}
    assert sorted({r["partition"] for r in written}) == list(range(12))
