"""One rule of valid transactions (fraudstream/contract.py), applied alike by every reader: the scenario reader
(so the simulator and replay) and the Flink query (its filter rendered from the contract), which reports every
record it refuses.

One table of edge values goes through both; each must accept exactly the valid ones.
"""

from __future__ import annotations

import pytest

import json


from fraudstream import contract as c
from fraudstream.local.scenario import read_scenario
from tests.support.flink_job import run_bounded
from tests.support.kafka import produce, read_all

pytestmark = [pytest.mark.flink, pytest.mark.kafka]

T = 1_700_000_000.0
CARD = 4_000_000_000_000_000

# (name, cc_num, amount, trans_ts, valid); "absent" leaves the field out
EDGES = [
    ("plain", CARD + 1, 12.5, T, True),
    ("amount zero", CARD + 2, 0.0, T, True),
    ("amount at the limit", CARD + 3, c.MAX_AMOUNT, T, True),
    ("amount above the limit", CARD + 4, c.MAX_AMOUNT + 0.01, T, False),
    ("amount negative", CARD + 5, -0.01, T, False),
    ("amount absent", CARD + 6, "absent", T, False),
    ("amount null", CARD + 7, None, T, False),
    ("amount a word", CARD + 8, "lots", T, False),
    ("amount as a number string", CARD + 14, "12.5", T, True),
    ("amount with a unit", CARD + 17, "12.5 EUR", T, False),
    ("amount NaN as a string", CARD + 18, "NaN", T, False),
    ("card one", 1, 5.0, T, True),
    ("card zero", 0, 5.0, T, False),
    ("card negative", -4, 5.0, T, False),
    ("card the largest", c.MAX_CARD_NUMBER, 5.0, T, True),
    ("card past 64 bits", c.MAX_CARD_NUMBER + 1, 5.0, T, False),
    ("card as digits", str(CARD + 9), 5.0, T, True),
    ("card absent", "absent", 5.0, T, False),
    ("card a fraction", CARD + 15.5, 5.0, T, False),
    ("time as a number string", CARD + 16, 5.0, str(T), True),
    ("card with dashes", "4111-1111", 5.0, T, False),
    ("time at the start", CARD + 10, 5.0, c.MIN_EVENT_TIME, True),
    ("time before 2000", CARD + 11, 5.0, c.MIN_EVENT_TIME - 1, False),
    ("time after 2100", CARD + 12, 5.0, c.MAX_EVENT_TIME + 1, False),
    ("time absent", CARD + 13, 5.0, "absent", False),
]


def message(cc_num, amount, trans_ts) -> dict:
    fields = {c.CC_NUM: cc_num, c.AMOUNT: amount, c.TRANS_TS: trans_ts}
    return {k: v for k, v in fields.items() if not (isinstance(v, str) and v == "absent")}


def test_the_scenario_reader_accepts_the_same_cards_and_amounts(tmp_path):
    # Scenario lines carry no event time (it is stamped when sent): the time rows do not apply.
    rows = [row for row in EDGES if row[3] == T]
    path = tmp_path / "edges.jsonl"
    path.write_text("".join(json.dumps({**message(cc, amount, "absent"), "delay_s": 0}) + "\n"
                            for _, cc, amount, _, _ in rows))
    lines, _problems = read_scenario(path)
    accepted = {line.line for line in lines}
    assert [(name, number in accepted) for number, (name, *_rest, valid) in enumerate(rows, start=1)] == [
        (name, valid) for name, *_rest, valid in rows]


def test_the_flink_query_scores_exactly_the_valid_transactions_and_reports_the_rest(kafka_broker, flink_app, topics,
                                                                                     tmp_path):
    values = [json.dumps(message(cc, amount, ts)).encode() for _, cc, amount, ts, _ in EDGES]
    places = produce(kafka_broker.bootstrap, topics.transactions, values, keys=[i for i in range(len(EDGES))])
    run_bounded(flink_app, topics.properties(tmp_path, bounded="true"))
    emitted = {(r["value"][c.PARTITION], r["value"][c.OFFSET]) for r in read_all(kafka_broker.bootstrap, topics.features)}
    reported = {(r["value"][c.PARTITION], r["value"][c.OFFSET]): r["value"][c.REASON]
                for r in read_all(kafka_broker.bootstrap, topics.invalid)}
    assert [(name, place in emitted) for (name, *_rest, valid), place in zip(EDGES, places)] == [
        (name, valid) for name, *_rest, valid in EDGES]
    assert {place for (*_r, valid), place in zip(EDGES, places) if not valid} == set(reported)
    assert all(reason.split(" ")[0] in (c.CC_NUM, c.AMOUNT, c.TRANS_TS) for reason in reported.values())
