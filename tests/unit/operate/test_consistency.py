"""`fraudstream consistency`: a small hand-checked run through the predict logic, its report, its readers.

The run: cards scored batch by batch by the real predict logic (fraudstream/online/predict.py) on the messages a
reference stand-in for Flink computes (per card in (event time, offset) order: flink_sql/features_in_order.sql),
with the 1-week records the batch SQL computes as the nightly job does (every transaction before its cutoff).
Every value is then exact; two defects are planted: one message whose 10-minute count is corrupted, and one
transaction that came late (scored on itself alone).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction
from fraudstream.cli.main import build_parser, main
from fraudstream.local.workdir import RunRecord, WorkDir
from fraudstream.offline import features
from fraudstream.online import predict
from fraudstream.online.messages import parse_event, parse_transaction_features
from fraudstream.online.settings import PredictSettings, StoreSettings
from fraudstream.operate import consistency
from fraudstream.operate.deployed import find
from tests.support.doubles import MemoryStore
from tests.support.events import features_message, msk_event
from tests.support.stack import OUTPUTS, create_stack

DAY, HOUR = 86_400.0, 3_600.0
# An hour ago (moto keeps log events of 14 days), moved to 02:00 UTC: the run is on one UTC day, after one
# transaction of the day before.
T = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(hour=2, minute=0, second=0, microsecond=0).timestamp()
if T > datetime.now(timezone.utc).timestamp() - 3600:
    T -= DAY
TODAY = int(T // DAY)
A, B, D, E, F, G, L, Y = (4111_2222_0000_0000 + n for n in range(1, 9))
# Before the archive (what Flink never saw): card A's week, and another card's transaction 8 days before, so
# the history spans the week every 1-week value needs.
HISTORY = [(G, T - 8 * DAY, 1.0), (A, T - 3 * DAY, 50.0), (A, T - 2 * DAY, 70.0)]
# Four batches (one Lambda invocation each), in topic order (partition 0, offsets 0, 1, ...): (card, event time,
# amount). Y pays the day before and today; B sends a burst of one millisecond in cents; E's two come in swapped
# order within Flink's tolerance; L's second comes after the watermark passed it (late).
BATCHES = [
    [(Y, T - 3 * HOUR, 12.34)],
    [(A, T, 10.0), (B, T + 5, 0.10), (B, T + 5, 0.20), (B, T + 5, 0.30), (L, T + 10, 9.0), (D, T + 30, 5.0),
     (F, T + 35, 1.0)],
    [(E, T + 41, 4.0), (E, T + 40, 3.0), (Y, T + 50, 7.66), (A, T + 60, 20.0), (D, T + 90, 5.0), (L, T + 20, 6.0)],
    [(A, T + 120, 40.0)],
]
SENT = [(card, ts, amount, offset) for offset, (card, ts, amount) in enumerate(t for batch in BATCHES for t in batch)]
LATE = (L, T + 20)
CORRUPTED = (D, T + 90)  # its message counts 7 in 10 minutes, not 2
ABSENT = (F, T + 35)  # not archived in the main report
NO_FEATURE = (E, T + 40)  # its verdict line lost secs_since_prev_tx in the main report
# Values differing from the batch definition, by feature: D's corrupted count makes its 10-minute average
# (the sum over the count) and the two ratios of them wrong; L's late one, alone, has its 10-minute and week
# values, its gap (none: the cap) and amount/week average wrong, while its other ratios are 1 either way.
DEFECTS = {c.NUM_TRANS_LAST_10M: 2, c.AVG_AMT_LAST_10M: 2, c.NUM_TRANS_LAST_1W: 1, c.AVG_AMT_LAST_1W: 1,
           c.SECS_SINCE_PREV_TX: 1, c.AMT_RATIO1: 1, c.AMT_RATIO2: 1, c.COUNT_RATIO: 1, c.AMOUNT: 0}
LATE_PROBLEM = "late verdicts (came behind Flink's watermark, scored on themselves alone)"
SETTINGS = PredictSettings(store=StoreSettings(backend="memory"), threshold=0.5)


class CountScorer:
    """FRAUD (0.9) from 5 transactions in 10 minutes, else 0.1: a verdict flips with the count."""

    feature_set = "v2"

    def score(self, rows):
        index = c.feature_names("v2").index(c.NUM_TRANS_LAST_10M)
        return [0.9 if row[index] >= 5 else 0.1 for row in rows]


def offset_of(card: int, ts: float) -> int:
    return next(offset for cc, t, _, offset in SENT if (cc, t) == (card, ts))


def name_of(card: int, ts: float) -> str:
    return f"{c.TRANSACTIONS_TOPIC}/0/{offset_of(card, ts)}"


def counts(compared: int, defects: dict[str, int] = DEFECTS) -> dict[str, dict[str, int]]:
    """Every feature's classes for ``compared`` verdicts of which the planted ones are ``defects``."""
    return {name: {"exact": compared - defects[name], "unverifiable": 0, "unexplained": defects[name]}
            for name in consistency.FEATURES}


def flink_messages(sent: list[tuple[int, float, float, int]]) -> list[dict]:
    """Flink's message for each (card, time, amount, offset) of ``sent``, in its order. Per card, in (event
    millisecond, offset) order, the on-time transactions Flink saw before (all sent, none of the history):
    the 10-minute count and sum of the rows within 600,000 ms before or at it, itself included; the previous
    one's time; today's totals and those of each of the 7 days before. Sums are added in cents, exact as Flink's decimals. A late
    transaction gets itself alone and enters no window."""
    seen: dict[int, list[tuple[int, int]]] = defaultdict(list)  # card -> [(event ms, cents)] in order
    messages = {}
    for card, ts, amount, offset in sorted(sent, key=lambda s: (s[0], c.event_ms(s[1]), s[3])):
        if (card, ts) == LATE:
            messages[offset] = features_message(card, ts, amount, offset=offset, late=True)
            continue
        ms, cents, before = c.event_ms(ts), round(amount * 100), seen[card]
        day = ms // c.MS_PER_DAY
        window = [x for m, x in before if m >= ms - c.WINDOW_10M_SECONDS * 1000] + [cents]
        today = [x for m, x in before if m // c.MS_PER_DAY == day] + [cents]
        days = {k: [x for m, x in before if m // c.MS_PER_DAY == day - k] for k in range(1, c.DAYS_BEFORE + 1)}
        message = features_message(card, ts, amount, offset=offset, count_10m=len(window), sum_10m=sum(window) / 100,
                                   today=(len(today), sum(today) / 100),
                                   days_before={k: (len(x), sum(x) / 100) for k, x in days.items()})
        message[c.PREV_EVENT_MS] = before[-1][0] if before else None
        if (card, ts) == CORRUPTED:
            message[c.NUM_TRANS_LAST_10M] = 7
        messages[offset] = message
        before.append((ms, cents))
    return [messages[offset] for *_, offset in sent]


def archived_transactions() -> list[ArchivedTransaction]:
    return [ArchivedTransaction(card, amount, ts, c.TRANSACTIONS_TOPIC, 0, offset, f"t{offset}")
            for card, ts, amount, offset in SENT]


def history_table() -> pa.Table:
    return pa.table({c.CC_NUM: [card for card, _, _ in HISTORY], c.AMOUNT: [a for _, _, a in HISTORY],
                     c.TRANS_TS: [ts for _, ts, _ in HISTORY], c.TID: [f"h{i}" for i in range(len(HISTORY))]})


def week_records(cutoff_day: int) -> list[dict]:
    """The nightly run's records as of ``cutoff_day`` (as `fraudstream features` computes them): from every
    transaction, the history and the archive, before it."""
    rows = [(card, ts, amount, f"h{i}") for i, (card, ts, amount) in enumerate(HISTORY)]
    rows += [(card, ts, amount, f"t{offset}") for card, ts, amount, offset in SENT]
    con = features.connect()
    table = pa.table({c.TID: [tid for *_, tid in rows],
                      c.DATETIME: pa.array([round(ts * 1e6) for _, ts, _, _ in rows], pa.timestamp("us")),
                      c.CC_NUM: pa.array([card for card, *_ in rows], pa.int64()),
                      c.AMOUNT: [amount for _, _, amount, _ in rows],
                      c.FRAUD_LABEL: pa.array([0] * len(rows), pa.int8())})
    aggregates = features.compute_batch_aggregates(con, features.compute_features(con, table), cutoff_day=cutoff_day)
    return aggregates.to_pylist()


def scored_run(cutoff_day: int = TODAY) -> list[dict]:
    """Score the batches with the 1-week records as of ``cutoff_day``; returns the verdicts' log records."""
    store = MemoryStore()
    for record in week_records(cutoff_day):
        store.put_record(c.BATCH_FEATURE_GROUP, record)
    messages = iter(flink_messages(SENT))
    records = []
    for batch in BATCHES:
        event = msk_event([next(messages) for _ in batch], topic=c.TRANSACTION_FEATURES_TOPIC)
        parsed, invalid = parse_event(event, parse_transaction_features)
        assert not invalid
        for verdict in predict.predict(parsed, store, CountScorer(), SETTINGS).verdicts:
            records.append({"level": "INFO", "message": verdict.message(), **verdict.log_fields()})
    return records


def without(records: list[dict], *cards: int) -> list[dict]:
    return [r for r in records if r["card"] not in {c.mask_card(card) for card in cards}]


@pytest.fixture(scope="module")
def run():
    """(log records, archived transactions) of the scored run."""
    records = scored_run()
    assert [r["offset"] for r in records] == list(range(len(SENT)))
    return records, archived_transactions()


@pytest.fixture(scope="module")
def report(run):
    records, archived = run
    absent, no_feature = offset_of(*ABSENT), offset_of(*NO_FEATURE)
    lines = [(f"log:{i}", r) for i, r in enumerate(records) if i != no_feature]
    lines += [("log:again", records[0]),  # a redelivered batch logs its verdict again
              ("log:no-offset", {k: v for k, v in records[1].items() if k != "offset"}),
              ("log:bad", {**records[2], "verdict": "MAYBE"}),
              ("log:no-feature", {**records[no_feature], "features": {
                  k: v for k, v in records[no_feature]["features"].items() if k != c.SECS_SINCE_PREV_TX}}),
              ("log:summary", {"message": "transactions processed", "transactions": 5})]
    kept = [a for a in archived if a.offset != absent]
    return consistency.run(lines, kept + kept[1:2], "test", history=history_table(),
                           scorer=CountScorer(), feature_set="v2", threshold=0.5, archive_complete=True,
                           archive_problems=["archive/dt=x/part-0:3: cc_num is missing or not a whole number"])


def test_the_reference_flink_counts_in_event_order_and_in_cents(run):
    messages = {(m[c.CC_NUM], m[c.TRANS_TS]): m for m in flink_messages(SENT)}
    burst = [m for m in flink_messages(SENT) if m[c.CC_NUM] == B]  # one millisecond: one after another, by offset
    assert [(m[c.NUM_TRANS_LAST_10M], m[c.AMT_SUM_LAST_10M], m[c.NUM_TRANS_TODAY]) for m in burst] == [
        (1, 0.1, 1), (2, 0.3, 2), (3, 0.6, 3)]  # 0.1 + 0.2 + 0.3 in cents: 0.6, not 0.6000000000000001
    assert messages[E, T + 41][c.NUM_TRANS_LAST_10M] == 2 and messages[E, T + 40][c.NUM_TRANS_LAST_10M] == 1
    y = messages[Y, T + 50]
    assert (y[c.NUM_TRANS_DAYS_BEFORE][0], y[c.AMT_SUM_DAYS_BEFORE][0]) == (1, 12.34)
    assert y[c.PREV_EVENT_MS] == c.event_ms(T - 3 * HOUR)
    assert messages[LATE][c.LATE] and messages[LATE][c.NUM_TRANS_LAST_10M] == 1
    # A's first takes its gap from its record's last transaction, its week from the record's tiles
    a1 = next(r for r in run[0] if r["offset"] == offset_of(A, T))["features"]
    assert (a1[c.SECS_SINCE_PREV_TX], a1[c.NUM_TRANS_LAST_1W]) == (2 * DAY, 3)
    assert a1[c.AVG_AMT_LAST_1W] == pytest.approx(130 / 3)


def test_every_value_is_exact_but_the_two_planted_defects(report):
    # 15 transactions, E's first logged without a feature, and 3 verdicts logged again or broken: 18 read; F's not
    # archived: 13 compared, the 1-week values too
    assert report.verdicts == 18 and report.compared == 13
    classes = {name: {k: counts_[k] for k in consistency.CLASSES} for name, counts_ in report.features.items()}
    assert classes == counts(13)
    assert report.unexplained_values == sum(DEFECTS.values()) == 10


def test_the_defects_are_named_with_both_values_and_the_late_one_as_late(report):
    by_count = {e["transaction"]: (e["online"], e["batch_definition"]) for e in report.unexplained
                if e["feature"] == c.NUM_TRANS_LAST_10M}
    # L's late one counts itself alone; the batch definition counts L's first too
    assert by_count == {name_of(*CORRUPTED): (7, 2), name_of(*LATE): (1, 2)}
    named = [(e["transaction"], e["feature"]) for e in report.unexplained]
    assert named[:4] == [(name_of(*CORRUPTED), f) for f in (c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.AMT_RATIO1,
                                                            c.COUNT_RATIO)]
    assert len(named) == consistency.EXAMPLES
    assert report.problems[LATE_PROBLEM] == 1 and report.problem_examples[LATE_PROBLEM] == [name_of(*LATE)]
    assert not report.consistent
    table = consistency.table(report)
    assert (f"unexplained: {name_of(*CORRUPTED)} card {c.mask_card(D)} {c.NUM_TRANS_LAST_10M} online 7.0, "
            "batch definition 2") in table
    assert f"input: 1 {LATE_PROBLEM} (e.g. {name_of(*LATE)})" in table


def test_bad_input_is_counted_and_named_never_fatal(report):
    assert report.problems["transaction absent from the archive"] == 1
    assert report.problem_examples["transaction absent from the archive"] == [name_of(*ABSENT)]
    assert report.problems["verdict logged again for a redelivered transaction (the first is compared)"] == 1
    assert report.problems["verdict without topic, partition, offset or trans_ts"] == 1
    assert report.problem_examples["verdict without topic, partition, offset or trans_ts"] == ["log:no-offset"]
    assert report.problems["unreadable verdict line"] == 1
    assert report.problem_examples["verdict without every feature"] == [
        f"{name_of(*NO_FEATURE)}: {c.SECS_SINCE_PREV_TX}"]
    assert report.problem_examples["transaction archived twice (kept once)"] == [name_of(A, T)]
    assert report.problems["unreadable archive line"] == 1
    assert len(report.problems) == 8  # the seven above and the late verdict


def test_scores_of_the_batch_definition_flip_the_corrupted_verdict_only(report):
    # D's second transaction: 7 in 10 minutes online (FRAUD), 2 by the batch definition (NOT FRAUD); L's late
    # one: 1 online, 2 by the batch definition, NOT FRAUD either way.
    assert dict(report.flips) == {f"{c.FRAUD} -> {c.NOT_FRAUD}": 1}
    assert len(report.score_differences) == 13 and report.score_differences[-1] == pytest.approx(0.8)
    assert report.score_differences[-2] == 0.0
    assert report.as_dict()["scores"]["verdict_flips"] == {f"{c.FRAUD} -> {c.NOT_FRAUD}": 1}


def test_a_clean_run_is_consistent(run):
    records, archived = run
    clean = without(records, D, L)
    report = consistency.run([("log", r) for r in clean], archived, "test", history=history_table(),
                             scorer=CountScorer(), feature_set="v2", threshold=0.5, archive_complete=True)
    assert report.compared == len(clean) == 11 and report.consistent and not report.problems
    assert all(set(counts_) == {"exact"} for counts_ in report.features.values())
    assert not report.flips and report.score_differences[-1] == 0.0


def test_the_nightly_run_a_day_late_serves_the_same_features(run):
    # Records as of the day before: A's week from tiles 1 and 2 instead of 2 and 3, Y's day before from Flink's
    # total (Y has no record then) instead of its tile.
    late_nightly = scored_run(TODAY - 1)
    assert [r["features"] for r in late_nightly] == [r["features"] for r in run[0]]
    assert [r["batch_record_age_s"] is None for r in late_nightly] == [card in (B, D, E, F, L, Y) for card, *_ in SENT]


def test_without_the_history_the_week_differs_and_is_unverifiable_not_unexplained(run):
    records, archived = run
    clean = without(records, D, L)
    # The archive starts at Y's first, 3 hours before T: A's week reaches before it (a stack's bucket keeps 8
    # days). A's records counted the history, the batch definition cannot: every value of A's three but the
    # amount, and the 10-minute ones and the gap after its first, differs.
    report = consistency.run([("log", r) for r in clean], archived, "test")
    assert report.unexplained_values == 0 and not report.scored and report.consistent
    unverifiable = {name: counts_["unverifiable"] for name, counts_ in report.features.items()}
    assert unverifiable == {c.AMOUNT: 0, c.NUM_TRANS_LAST_10M: 0, c.AVG_AMT_LAST_10M: 0, c.NUM_TRANS_LAST_1W: 3,
                            c.AVG_AMT_LAST_1W: 3, c.SECS_SINCE_PREV_TX: 1, c.AMT_RATIO1: 3, c.AMT_RATIO2: 3,
                            c.COUNT_RATIO: 3}
    assert all(counts_["exact"] + counts_["unverifiable"] == 11 for counts_ in report.features.values())


def test_an_empty_window_is_named(run):
    report = consistency.run([], [], "test")
    assert report.compared == 0 and report.problems == {"no verdict in the window": 1}
    assert "no verdict in the window" in consistency.table(report)
    assert report.consistent  # nothing unexplained: the problem is named, the exit code is the caller's


# --- The command on a local work directory and on a stack ------------------------------------------------


def write_workdir(path: Path, records: list[dict], archived: list[ArchivedTransaction], model: Path) -> Path:
    files = WorkDir(path)
    files.logs.mkdir(parents=True)
    files.verdict_log.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json, but mentions \"verdict\"\n")
    files.handler_log.write_text("")
    day = WorkDir(path).archive / "dt=2026-01-01"
    day.mkdir(parents=True)
    (day / "part-0-0").write_text("\n".join(json.dumps(a.__dict__) for a in archived) + "\n")
    (day / ".part-0-1.inprogress").write_text("{broken\n")  # Flink's open part file: not data
    history = path / "history.parquet"
    pq.write_table(pa.table({c.CC_NUM: [h[0] for h in HISTORY], c.AMOUNT: [h[2] for h in HISTORY],
                             c.TID: [f"h{i}" for i in range(len(HISTORY))],
                             c.DATETIME: pa.array([round(h[1] * 1e6) for h in HISTORY], pa.timestamp("us"))}), history)
    WorkDir(path).write_run(RunRecord(model=model, feature_set="v2", threshold=0.5, batch_aggregates=(),
                                      archived=True, history=history))
    return path


def test_local_exits_1_on_the_planted_defects_and_draws_the_rates(run, tmp_path, capsys):
    records, archived = run
    workdir = write_workdir(tmp_path / "local", records, archived, tmp_path / "no-model.tar.gz")
    png = tmp_path / "rates.png"
    assert main(["consistency", "--local", str(workdir), "--png", str(png)]) == 1
    out = capsys.readouterr().out
    assert "16 verdicts read, 15 compared" in out
    assert f"unexplained: {name_of(*CORRUPTED)}" in out and f"input: 1 {LATE_PROBLEM}" in out
    assert "input: 1 unreadable verdict line" in out and "model not found" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_local_json_carries_the_same_counts(run, tmp_path, capsys):
    records, archived = run
    workdir = write_workdir(tmp_path / "local", records, archived, tmp_path / "no-model.tar.gz")
    assert main(["consistency", "--local", str(workdir), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verdicts"] == 16 and result["compared"] == 15 and result["features"] == counts(15)
    assert result["unexplained_values"] == 10 and result["scores"] is None
    assert result["problems"] == {"unreadable verdict line": 1, LATE_PROBLEM: 1,
                                  "model not found; scores not compared": 1}


def test_local_json_of_a_clean_run_exits_0_with_every_value_exact(run, tmp_path, capsys):
    records, archived = run
    clean = without(records, D, L)
    workdir = write_workdir(tmp_path / "local", clean, archived, tmp_path / "no-model.tar.gz")
    assert main(["consistency", "--local", str(workdir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["compared"] == 11 and result["unexplained_values"] == 0
    assert result["features"] == counts(11, dict.fromkeys(DEFECTS, 0))


def test_a_local_run_that_kept_no_history_leaves_the_week_unverifiable(run, tmp_path, capsys):
    # `replay --batch-aggregates X` with no transactions.parquet beside X records "history": null, yet its records
    # counted card A's week: without that history the check cannot tell, as with a stack.
    records, archived = run
    workdir = write_workdir(tmp_path / "local", without(records, D, L), archived, tmp_path / "no-model.tar.gz")
    files = WorkDir(workdir)
    files.write_run(dataclasses.replace(files.read_run(), history=None, batch_aggregates=("batch_aggregates-1.parquet",)))
    assert main(["consistency", "--local", str(workdir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["unexplained_values"] == 0 and result["features"][c.NUM_TRANS_LAST_1W]["unverifiable"] == 3


def test_a_directory_that_is_not_a_run_is_one_error_line(tmp_path, capsys):
    assert main(["consistency", "--local", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (f"fraudstream consistency: error: {tmp_path}: no run.json; not the work "
                                               "directory of a local run (run `fraudstream replay` or `make demo`)")


def test_stack_mode_needs_a_start(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["consistency"])
    assert exit_.value.code == 2 and "give --local [DIR], or --start" in capsys.readouterr().err


@mock_aws
def test_stack_reads_the_log_group_and_the_archive_in_s3(run, capsys):
    records, archived = run
    bucket = "fraudtest-data"
    create_stack(outputs={**OUTPUTS, "DataBucketName": bucket})
    logs = boto3.client("logs", region_name="us-east-1")
    group = OUTPUTS["PredictLogGroupName"]
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logged = int(T * 1000) + 5000
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": logged + i, "message": json.dumps(r)} for i, r in enumerate(records)]
        + [{"timestamp": logged + 99, "message": "START RequestId: x"}])
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    earlier = ArchivedTransaction(G, 1.0, T - 6 * DAY, c.TRANSACTIONS_TOPIC, 1, 0)  # the archive spans 6 days
    by_day = defaultdict(list)
    for row in [*archived, earlier]:
        by_day[datetime.fromtimestamp(row.trans_ts, timezone.utc).date()].append(json.dumps(row.__dict__))
    for day, lines in by_day.items():
        s3.put_object(Bucket=bucket, Key=f"transactions/dt={day}/part-a-0", Body="\n".join(lines).encode())
    day = datetime.fromtimestamp(T, timezone.utc).date()
    s3.put_object(Bucket=bucket, Key=f"transactions/dt={day}/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key=f"transactions/dt={day - timedelta(days=30)}/part-old", Body=b"{bad")
    deployment = find("FraudTest", "us-east-1")
    start = datetime.fromtimestamp(T, timezone.utc)
    args = build_parser().parse_args(["consistency", "--stack", "FraudTest", "--region", "us-east-1",
                                      "--start", start.isoformat(), "--end", (start + timedelta(hours=1)).isoformat()])
    from fraudstream.cli.operate import cmd_consistency

    assert cmd_consistency(args, deployment=deployment) == 1
    out = capsys.readouterr().out
    assert "15 verdicts read, 15 compared" in out  # the archive read from a week before the start: Y's first too
    assert f"unexplained: {name_of(*CORRUPTED)}" in out and f"input: 1 {LATE_PROBLEM}" in out
    # A's week reaches before the archive's first day: its differing values are unverifiable, not unexplained
    row = next(line for line in out.splitlines() if line.startswith(f"{c.NUM_TRANS_LAST_1W} "))
    assert row.split()[1:4] == ["11", "4", "0"]  # A's three, and L's late week (1, not 2) that reaches before it too
    assert "scores not compared" in out and "unreadable archive line" not in out  # the 30-day-old file is not read
