"""The comparison: each verdict's logged features against the batch definition recomputed from the archive and
the history before it (DuckDB), and the model's scores of both."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction
from fraudstream.contract import RecordRef
from fraudstream.online.features import feature_vector
from fraudstream.online.scorers import Scorer
from fraudstream.online.verdict import UnreadableVerdict, Verdict
from fraudstream.operate.consistency.report import EXACT, EXAMPLES, FEATURES, UNEXPLAINED, UNVERIFIABLE, Report

REL_TOL, ABS_TOL = 1e-9, 1e-12
TEN_MINUTE_VALUES = {c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M}


@dataclass(frozen=True)
class OfflineRow:
    """A transaction of the archive or the history, with the batch definition's features."""

    key: RecordRef | None  # None: a history row (before the archive)
    trans_ts: float
    amount: float
    features: dict[str, float]


def read_verdicts(records: Iterable[tuple[str, Mapping[str, Any]]], report: Report) -> dict[RecordRef, Verdict]:
    """The first verdict of each transaction from (where, log record) pairs; the rest counted in ``report``."""
    verdicts: dict[RecordRef, Verdict] = {}
    for where, record in records:
        if "verdict" not in record:
            continue  # the handler's other lines (summaries, errors)
        report.verdicts += 1
        try:
            verdict = Verdict.from_log(record)
        except UnreadableVerdict as error:
            report.problem("unreadable verdict line", f"{where}: {error}")
            continue
        if verdict.topic is None or verdict.partition is None or verdict.offset is None or verdict.trans_ts is None:
            report.problem("verdict without topic, partition, offset or trans_ts", where)
            continue
        key = verdict.place()
        if key in verdicts:
            report.problem("verdict logged again for a redelivered transaction (the first is compared)", str(key))
            continue
        verdicts[key] = verdict
    return verdicts


def index_archive(rows: Iterable[ArchivedTransaction], report: Report) -> dict[RecordRef, ArchivedTransaction]:
    archived: dict[RecordRef, ArchivedTransaction] = {}
    for row in rows:
        if row.key in archived:
            report.problem("transaction archived twice (kept once)", str(row.key))
            continue
        archived[row.key] = row
    return archived


def offline_features(archived: Sequence[ArchivedTransaction], history: pa.Table | None) -> dict[int, list[OfflineRow]]:
    """Each card's transactions (history before the first archived one, then the archive) with the batch
    definition's features, in (event time, partition, offset) order."""
    from fraudstream.offline.batch_sql import render_sql
    from fraudstream.offline.features import connect

    # One card's transactions of one millisecond count in the order they sat in their partition (the tid orders
    # them in the batch SQL): the offset, zero-padded, after any history row's tid of the same millisecond.
    schema = pa.schema([("cc_num", pa.int64()), ("amount", pa.float64()), ("trans_ts", pa.float64()), ("tid", pa.string()),
                        ("k_topic", pa.string()), ("k_partition", pa.int64()), ("k_offset", pa.int64())])
    table = pa.Table.from_pylist([{"cc_num": r.cc_num, "amount": r.amount, "trans_ts": r.trans_ts,
                                   "tid": f"~{r.offset:020d}", "k_topic": r.topic,
                                   "k_partition": r.partition, "k_offset": r.offset} for r in archived], schema=schema)
    if history is not None and history.num_rows:
        first = min((row.trans_ts for row in archived), default=math.inf)
        before = history.filter(pc.less(history.column(c.TRANS_TS), first))
        table = pa.concat_tables([pa.table({name: before.column(name).cast(schema.field(name).type)
                                            if name in before.column_names else pa.nulls(before.num_rows, schema.field(name).type)
                                            for name in schema.names}, schema=schema), table])
    con = connect()
    con.register("transactions", table)
    result = con.sql(f"SELECT * FROM ({render_sql('batch_features')}) "
                     "ORDER BY cc_num, trans_ts, k_partition NULLS FIRST, k_offset NULLS FIRST").fetch_arrow_table().to_pydict()
    cards: dict[int, list[OfflineRow]] = defaultdict(list)
    for i, card in enumerate(result["cc_num"]):
        key = None if result["k_topic"][i] is None else RecordRef(result["k_topic"][i], result["k_partition"][i],
                                                                   result["k_offset"][i])
        cards[card].append(OfflineRow(key, result["trans_ts"][i], result["amount"][i],
                                      {name: result[name][i] for name in FEATURES}))
    return cards


def same_value(a: float, b: float) -> bool:
    """Equal to the batch definition's value, as far as a double and a decimal can be (relative 1e-9)."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare(verdicts: Mapping[RecordRef, Verdict], archived: Mapping[RecordRef, ArchivedTransaction],
            offline: Mapping[int, list[OfflineRow]], report: Report,
            coverage_start: float = -math.inf) -> list[tuple[Verdict, dict[str, float]]]:
    """Classify every feature value of every verdict that has its transaction; returns (verdict, batch
    definition's features) pairs for the score comparison. ``coverage_start``: the time of the oldest
    transaction the archive and history hold; a differing value whose windows reach before it cannot be
    checked (unverifiable)."""
    offline_by_key = {row.key: row for rows in offline.values() for row in rows if row.key is not None}
    pairs = []
    for key, verdict in verdicts.items():
        tx = archived.get(key)
        if tx is None:
            report.problem("transaction absent from the archive", str(key))
            continue
        if (c.mask_card(tx.cc_num) != verdict.card or not same_value(tx.trans_ts, verdict.trans_ts)
                or abs(tx.amount - verdict.amount) > 0.005):
            report.problem("archived transaction differs from the verdict's (card, time or amount)", str(key))
            continue
        missing = [name for name in FEATURES if not isinstance(verdict.features.get(name), (int, float))]
        if missing:
            report.problem("verdict without every feature", f"{str(key)}: {', '.join(missing)}")
            continue
        report.compared += 1
        truth = offline_by_key[key].features
        # The oldest transaction the batch definition may read: 10 minutes before for the 10-minute values, 7 days
        # before the start of the transaction's day for the rest (the week, and the previous transaction's gap).
        oldest_week = (c.event_ms(tx.trans_ts) // c.MS_PER_DAY - 7) * c.SECONDS_PER_DAY
        differs = False
        for name in FEATURES:
            got = float(verdict.features[name])
            oldest = tx.trans_ts - c.WINDOW_10M_SECONDS if name in TEN_MINUTE_VALUES else oldest_week
            if same_value(got, truth[name]):
                kind = EXACT
            elif oldest < coverage_start:
                kind = UNVERIFIABLE
            else:
                kind = UNEXPLAINED
                differs = True
                if len(report.unexplained) < EXAMPLES:
                    report.unexplained.append({"transaction": str(key), "card": verdict.card, "feature": name,
                                               "online": got, "batch_definition": truth[name]})
            report.features[name][kind] += 1
        if differs and verdict.late:
            report.problem("late verdicts (came behind Flink's watermark, scored on themselves alone)", str(key))
        pairs.append((verdict, truth))
    return pairs


def compare_scores(pairs: Sequence[tuple[Verdict, dict[str, float]]], scorer: Scorer, feature_set: str,
                   threshold: float, report: Report) -> None:
    """Score the batch definition's vectors; record |logged - offline| and verdicts that would flip."""
    report.scored = True
    if not pairs:
        return
    scores = scorer.score([feature_vector(truth, feature_set) for _, truth in pairs])
    for (verdict, _), score in zip(pairs, scores, strict=True):
        report.score_differences.append(abs(verdict.score - score))
        offline_verdict = c.verdict(score, threshold)
        if offline_verdict != verdict.verdict:
            report.flips[f"{verdict.verdict} -> {offline_verdict}"] += 1
    report.score_differences.sort()


def run(records: Iterable[tuple[str, Mapping[str, Any]]], archived_rows: Iterable[ArchivedTransaction], source: str, *,
        history: pa.Table | None = None, scorer: Scorer | None = None, feature_set: str = c.DEFAULT_FEATURE_SET,
        threshold: float = c.DEFAULT_THRESHOLD, archive_problems: Sequence[str] = (),
        archive_complete: bool = False) -> Report:
    """The whole report from the inputs (each reader below gathers them). ``archive_complete``: the archive
    holds every transaction the topic ever carried (a local run, whose topic starts empty)."""
    report = Report(source)
    for problem in archive_problems:
        report.problem("unreadable archive line", problem)
    verdicts = read_verdicts(records, report)
    archived = index_archive(archived_rows, report)
    if not verdicts:
        report.problem("no verdict in the window")
        return report
    offline = offline_features(list(archived.values()), history)
    times = [row.trans_ts for rows in offline.values() for row in rows[:1]]
    coverage = -math.inf if archive_complete else min(times, default=math.inf)
    pairs = compare(verdicts, archived, offline, report, coverage)
    if scorer is not None:
        compare_scores(pairs, scorer, feature_set, threshold, report)
    return report
