"""`fraudstream consistency`: the features the predict handler served, recomputed with the batch SQL.

Input: the verdicts the handler logged (each carries its features, score, event time, its place in the
topic, the offsets of the batch it was scored with, and the age of the 10-minute and 1-week records it started
from) and the transactions Flink archived (fraudstream/archive.py). For each verdict it computes
- the batch definition: fraudstream/offline/sql/batch_features.sql over the archive and the history
  before it (DuckDB), the value training used for the same transaction;
- what the online definition (fraudstream/online/features.py) gives from the records the handler read,
  rebuilt from the archive: the 10-minute record of the transaction the logged age points at (average
  rounded to 6 decimals, as Flink's DECIMAL(38, 6) stores it), the 1-week record as of the last batch run
  (the loaded one locally, else the batch SQL at the logged age), the batch's own transactions folded in.
Each feature value is then exact (equal to the batch definition, relative 1e-9), explained (different,
but equal to the online definition on those records: the known approximation of docs/online-path.md, "Consistency"),
unverifiable (different, and the history the check needs is not there), or unexplained. With the model,
the scores of the batch definition's vectors are compared with the logged ones, and verdict flips counted.

Plain functions over plain values; the readers of a local work directory and of a stack are at the end.
"""

from __future__ import annotations

import bisect
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fraudstream import archive
from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction, Key
from fraudstream.local.replay import percentile
from fraudstream.online.features import card_features, feature_vector
from fraudstream.online.scorers import Scorer
from fraudstream.online.verdict import UnreadableVerdict, Verdict

REL_TOL, ABS_TOL = 1e-9, 1e-12
FLINK_AVERAGE_DECIMALS = Decimal("0.000001")  # AVG over DECIMAL(12, 2) in Flink: DECIMAL(38, 6)
TIME_TOL_S = 1e-3  # a logged age points at a record time up to this far (float arithmetic)
EXACT, EXPLAINED, UNVERIFIABLE, UNEXPLAINED = "exact", "explained", "unverifiable", "unexplained"
CLASSES = (EXACT, EXPLAINED, UNVERIFIABLE, UNEXPLAINED)
# Every value a verdict logs: the aggregates and the model features built from them.
FEATURES = tuple(dict.fromkeys((c.AMOUNT, *c.AGGREGATE_COLUMNS, *c.ALL_FEATURES)))
EXAMPLES = 5  # named examples kept per problem and for unexplained values


@dataclass(frozen=True)
class OfflineRow:
    """A transaction of the archive or the history, with the batch definition's features."""

    key: Key | None  # None: a history row (before the archive)
    trans_ts: float
    amount: float
    features: dict[str, float]


@dataclass
class Report:
    source: str
    verdicts: int = 0  # verdict records read
    compared: int = 0
    features: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # feature -> class -> n
    problems: Counter = field(default_factory=Counter)  # named input problem -> n
    problem_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unexplained: list[dict[str, Any]] = field(default_factory=list)  # the first EXAMPLES
    score_differences: list[float] = field(default_factory=list)  # |logged - batch definition's|, sorted
    flips: Counter = field(default_factory=Counter)  # "FRAUD -> NOT FRAUD" -> n
    scored: bool = False

    def problem(self, name: str, example: str = "") -> None:
        self.problems[name] += 1
        if example and len(self.problem_examples[name]) < EXAMPLES:
            self.problem_examples[name].append(example)

    @property
    def unexplained_values(self) -> int:
        return sum(counts[UNEXPLAINED] for counts in self.features.values())

    def as_dict(self) -> dict[str, Any]:
        diffs = self.score_differences
        return {
            "source": self.source, "verdicts": self.verdicts, "compared": self.compared,
            "features": {name: {k: counts[k] for k in CLASSES} for name, counts in self.features.items()},
            "unexplained_values": self.unexplained_values, "unexplained_examples": self.unexplained,
            "problems": dict(self.problems), "problem_examples": dict(self.problem_examples),
            "scores": None if not self.scored else {
                "compared": len(diffs), "p50": _percentile(diffs, 50), "p99": _percentile(diffs, 99),
                "max": diffs[-1] if diffs else None, "verdict_flips": dict(self.flips)},
        }


# --- Inputs -----------------------------------------------------------------------------------------


def read_verdicts(records: Iterable[tuple[str, Mapping[str, Any]]], report: Report) -> dict[Key, Verdict]:
    """The first verdict of each transaction from (where, log record) pairs; the rest counted in ``report``."""
    verdicts: dict[Key, Verdict] = {}
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
        key = (verdict.topic, verdict.partition, verdict.offset)
        if key in verdicts:
            report.problem("verdict logged again for a redelivered transaction (the first is compared)", _name(key))
            continue
        verdicts[key] = verdict
    return verdicts


def index_archive(rows: Iterable[ArchivedTransaction], report: Report) -> dict[Key, ArchivedTransaction]:
    archived: dict[Key, ArchivedTransaction] = {}
    for row in rows:
        if row.key in archived:
            report.problem("transaction archived twice (kept once)", _name(row.key))
            continue
        archived[row.key] = row
    return archived


def offline_features(archived: Sequence[ArchivedTransaction], history: pa.Table | None) -> dict[int, list[OfflineRow]]:
    """Each card's transactions (history before the first archived one, then the archive) with the batch
    definition's features, in (event time, partition, offset) order."""
    from fraudstream.offline.batch_sql import render_sql
    from fraudstream.offline.features import connect

    schema = pa.schema([("cc_num", pa.int64()), ("amount", pa.float64()), ("trans_ts", pa.float64()),
                        ("k_topic", pa.string()), ("k_partition", pa.int64()), ("k_offset", pa.int64())])
    table = pa.Table.from_pylist([{"cc_num": r.cc_num, "amount": r.amount, "trans_ts": r.trans_ts, "k_topic": r.topic,
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
        key = None if result["k_topic"][i] is None else (result["k_topic"][i], result["k_partition"][i], result["k_offset"][i])
        cards[card].append(OfflineRow(key, result["trans_ts"][i], result["amount"][i],
                                      {name: result[name][i] for name in FEATURES}))
    return cards


# --- The records the handler read, rebuilt --------------------------------------------------------------


def _at(rows: Sequence[OfflineRow], moment: float) -> int | None:
    """Index of the card's last transaction at ``moment`` (within TIME_TOL_S), if there is one; ``rows`` are
    in event-time order."""
    i = bisect.bisect_right(rows, moment + TIME_TOL_S, key=lambda row: row.trans_ts) - 1
    return i if i >= 0 and rows[i].trans_ts >= moment - TIME_TOL_S else None


def flink_average(average: float, count: int) -> float:
    """The 10-minute average as Flink stores it: the exact sum of cent amounts over the count, 6 decimals."""
    cents = round(average * count * 100)
    return float((Decimal(cents) / Decimal(100 * count)).quantize(FLINK_AVERAGE_DECIMALS, rounding=ROUND_HALF_UP))


def streaming_record(rows: Sequence[OfflineRow], moment: float) -> dict[str, Any] | None:
    """The cc-agg-fg record Flink published for the card's transaction at ``moment`` (None: not archived)."""
    i = _at(rows, moment)
    if i is None:
        return None
    row = rows[i]
    count = int(row.features[c.NUM_TRANS_LAST_10M])
    return {c.TRANS_TIME: row.trans_ts, c.NUM_TRANS_LAST_10M: count,
            c.AVG_AMT_LAST_10M: flink_average(row.features[c.AVG_AMT_LAST_10M], count),
            c.PREV_TRANS_TIME: rows[i - 1].trans_ts if i else None}


def batch_record(rows: Sequence[OfflineRow], moment: float) -> dict[str, Any] | None:
    """The cc-agg-batch-fg record of a batch run whose newest transaction of the card was at ``moment``."""
    i = _at(rows, moment)
    if i is None:
        return None
    row = rows[i]
    return {c.TRANS_TIME: row.trans_ts, c.NUM_TRANS_LAST_1W: int(row.features[c.NUM_TRANS_LAST_1W]),
            c.AVG_AMT_LAST_1W: row.features[c.AVG_AMT_LAST_1W]}


# --- The comparison -------------------------------------------------------------------------------------


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare(verdicts: Mapping[Key, Verdict], archived: Mapping[Key, ArchivedTransaction],
            offline: Mapping[int, list[OfflineRow]], report: Report,
            batch_records: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
            coverage_start: float = -math.inf) -> list[tuple[Verdict, dict[str, float]]]:
    """Classify every feature value of every verdict that has its transaction; returns (verdict, batch
    definition's features) pairs for the score comparison. ``batch_records``: each card's 1-week records
    the run loaded (local; one per load); None rebuilds them from the archive at the logged age. ``coverage_start``: the time of
    the oldest transaction the archive and history hold; a value whose records were rebuilt from windows
    reaching before it cannot be checked (unverifiable)."""
    by_batch: dict[tuple, list[ArchivedTransaction]] = defaultdict(list)
    for key, verdict in verdicts.items():
        if key in archived and verdict.batch_offsets:
            by_batch[_batch_of(verdict, archived[key].cc_num)].append(archived[key])
    offline_by_key = {row.key: row for rows in offline.values() for row in rows if row.key is not None}
    pairs = []
    for key, verdict in verdicts.items():
        tx = archived.get(key)
        if tx is None:
            report.problem("transaction absent from the archive", _name(key))
            continue
        if (c.mask_card(tx.cc_num) != verdict.card or not close(tx.trans_ts, verdict.trans_ts)
                or abs(tx.amount - verdict.amount) > 0.005):
            report.problem("archived transaction differs from the verdict's (card, time or amount)", _name(key))
            continue
        missing = [name for name in FEATURES if not isinstance(verdict.features.get(name), (int, float))]
        if missing:
            report.problem("verdict without every feature", f"{_name(key)}: {', '.join(missing)}")
            continue
        report.compared += 1
        rows = offline[tx.cc_num]
        truth = offline_by_key[key].features
        expected, why_not = _online_definition(verdict, tx, rows, by_batch, batch_records)
        unverifiable = False
        for name in FEATURES:
            got = float(verdict.features[name])
            if close(got, truth[name]):
                kind = EXACT
            elif expected is not None and close(got, expected[name]):
                kind = EXPLAINED
            elif expected is None or _rebuilt_from_before(verdict, name, coverage_start, batch_records is None):
                kind = UNVERIFIABLE
            else:
                kind = UNEXPLAINED
                if len(report.unexplained) < EXAMPLES:
                    report.unexplained.append({"transaction": _name(key), "card": verdict.card, "feature": name,
                                               "online": got, "batch_definition": truth[name],
                                               "online_definition": expected[name]})
            report.features[name][kind] += 1
            unverifiable = unverifiable or kind == UNVERIFIABLE
        if unverifiable:
            report.problem(f"verdicts whose records could not be rebuilt ({why_not})" if expected is None else
                           "verdicts whose records need transactions older than the archive and history", _name(key))
        pairs.append((verdict, truth))
    return pairs


def _online_definition(verdict: Verdict, tx: ArchivedTransaction, rows: Sequence[OfflineRow],
                       by_batch: Mapping[tuple, list[ArchivedTransaction]],
                       batch_records: Mapping[int, Sequence[Mapping[str, Any]]] | None) -> tuple[dict[str, Any] | None, str]:
    """The features the online definition gives from the rebuilt records, or (None, why not)."""
    streaming = batch = None
    if verdict.streaming_record_age_s is not None:
        streaming = streaming_record(rows, verdict.trans_ts - verdict.streaming_record_age_s)
        if streaming is None:
            return None, "the 10-minute record's transaction is not archived"
    if verdict.batch_record_age_s is not None:
        if batch_records is not None:
            moment = verdict.trans_ts - verdict.batch_record_age_s
            batch = next((record for record in batch_records.get(tx.cc_num, ())
                          if abs(record[c.TRANS_TIME] - moment) <= TIME_TOL_S), None)
            if batch is None:
                return None, "the 1-week record is none of those loaded"
        else:
            batch = batch_record(rows, verdict.trans_ts - verdict.batch_record_age_s)
            if batch is None:
                return None, "the 1-week record's transaction is not in the history"
    if not verdict.batch_offsets:
        return None, "the verdict names no batch (batch_offsets)"
    same_batch = sorted(by_batch[_batch_of(verdict, tx.cc_num)], key=lambda t: (t.trans_ts, t.partition, t.offset))
    index = next(i for i, other in enumerate(same_batch) if other.key == tx.key)
    return card_features([(t.trans_ts, t.amount) for t in same_batch], streaming, batch)[index], ""


TEN_MINUTE_RECORD = {c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.AMT_RATIO1, c.COUNT_RATIO, c.SECS_SINCE_PREV_TX}
WEEK_RECORD = {c.NUM_TRANS_LAST_1W, c.AVG_AMT_LAST_1W, c.AMT_RATIO1, c.AMT_RATIO2, c.COUNT_RATIO, c.SECS_SINCE_PREV_TX}


def _batch_of(verdict: Verdict, card: int) -> tuple:
    """The card's transactions scored in one invocation share this (the handler folds them into each other)."""
    return verdict.topic, verdict.partition, verdict.batch_offsets, card


def _rebuilt_from_before(verdict: Verdict, name: str, coverage_start: float, batch_rebuilt: bool) -> bool:
    """Did rebuilding the records ``name`` depends on need transactions older than the archive and history hold?"""
    oldest = math.inf
    if name in TEN_MINUTE_RECORD and verdict.streaming_record_age_s is not None:
        oldest = verdict.trans_ts - verdict.streaming_record_age_s - c.WINDOW_10M_SECONDS
    if name in WEEK_RECORD and batch_rebuilt and verdict.batch_record_age_s is not None:
        oldest = min(oldest, verdict.trans_ts - verdict.batch_record_age_s - c.WINDOW_1W_SECONDS)
    return oldest < coverage_start


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
        history: pa.Table | None = None, batch_records: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
        scorer: Scorer | None = None, feature_set: str = c.DEFAULT_FEATURE_SET,
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
    pairs = compare(verdicts, archived, offline, report, batch_records, coverage)
    if scorer is not None:
        compare_scores(pairs, scorer, feature_set, threshold, report)
    return report


# --- Output -------------------------------------------------------------------------------------------


def table(report: Report) -> str:
    lines = [f"consistency of {report.source}: {report.verdicts:,} verdicts read, {report.compared:,} compared "
             "with the batch definition"]
    if report.features:
        lines.append(f"{'feature':<22} {'exact':>8} {'explained':>10} {'unverifiable':>13} {'unexplained':>12} {'exact %':>8}")
        for name in FEATURES:
            counts = report.features.get(name)
            if counts:
                total = sum(counts.values())
                lines.append(f"{name:<22} {counts[EXACT]:>8,} {counts[EXPLAINED]:>10,} {counts[UNVERIFIABLE]:>13,} "
                             f"{counts[UNEXPLAINED]:>12,} {100 * counts[EXACT] / total:>7.1f}%")
    if report.scored:
        diffs = report.score_differences
        flips = ", ".join(f"{n} {what}" for what, n in sorted(report.flips.items())) or "none"
        if diffs:
            lines.append(f"scores (logged vs the batch definition's vector): |difference| p50 {_percentile(diffs, 50):.6f}, "
                         f"p99 {_percentile(diffs, 99):.6f}, max {diffs[-1]:.6f}; verdict flips: {flips}")
    else:
        lines.append("scores not compared (no model given)")
    for example in report.unexplained:
        lines.append(f"unexplained: {example['transaction']} card {example['card']} {example['feature']} online "
                     f"{example['online']:g}, batch definition {example['batch_definition']:g}, online definition "
                     f"on the rebuilt records {example['online_definition']:g}")
    for name, count in sorted(report.problems.items()):
        examples = report.problem_examples.get(name)
        lines.append(f"input: {count:,} {name}" + (f" (e.g. {'; '.join(examples[:3])})" if examples else ""))
    return "\n".join(lines)


def write_png(report: Report, path: Path) -> None:
    """Per feature: the share of values explained, unverifiable and unexplained (stacked bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fraudstream.files import atomic_path

    names = [name for name in FEATURES if report.features.get(name)]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.5))
    left = [0.0] * len(names)
    for kind, colour in ((EXPLAINED, "tab:blue"), (UNVERIFIABLE, "tab:gray"), (UNEXPLAINED, "tab:red")):
        shares = [100 * report.features[n][kind] / sum(report.features[n].values()) for n in names]
        ax.barh(names, shares, left=left, color=colour, label=kind)
        left = [a + b for a, b in zip(left, shares)]
    ax.set(xlabel="% of values differing from the batch definition", xlim=(0, 100),
           title=f"Online vs batch features, {report.compared:,} transactions")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    return percentile(list(ordered), q) if ordered else None


def _name(key: Key) -> str:
    return f"{key[0]}/{key[1]}/{key[2]}"


# --- Readers ------------------------------------------------------------------------------------------


def log_record(text: str) -> dict[str, Any]:
    """A logged line as a record: its JSON object; a line that is not one counts as an unreadable verdict
    when it mentions a verdict, and as another line otherwise."""
    text = text.strip()
    try:
        record = json.loads(text) if text.startswith("{") else None
    except ValueError:
        record = None
    if isinstance(record, dict):
        return record
    return {"verdict": None} if '"verdict"' in text else {}


def read_log_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file:line, record) of a JSON-lines log (the local pipeline's log group)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        return [(f"{path}:{number}", log_record(line)) for number, line in enumerate(lines, start=1)]


def read_history(path: Path) -> pa.Table:
    """Transactions of `fraudstream generate`'s format (datetime) as cc_num, amount, trans_ts."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fraudstream.files import check_parquet

    check_parquet(path, {c.CC_NUM: "integer", c.AMOUNT: "number", c.DATETIME: "timestamp"})
    table = pq.read_table(path, columns=[c.CC_NUM, c.AMOUNT, c.DATETIME])
    seconds = pc.divide(pc.cast(pc.cast(table.column(c.DATETIME), pa.timestamp("us")), pa.int64()).cast(pa.float64()), 1e6)
    return pa.table({c.CC_NUM: table.column(c.CC_NUM).cast(pa.int64()), c.AMOUNT: table.column(c.AMOUNT).cast(pa.float64()),
                     c.TRANS_TS: seconds})


def batch_records_of(paths: Iterable[Path]) -> dict[int, list[dict[str, Any]]]:
    """Each card's 1-week records in the batch_aggregates files a run loaded (one per load)."""
    from fraudstream.offline.features import read_batch_aggregates

    records: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for path in paths:
        for row in read_batch_aggregates(path):
            records[int(row[c.CC_NUM])].append(row)
    return records


def local(workdir: Path, *, history: Path | None = None, model: Path | None = None) -> Report:
    """The report of a local pipeline's work directory (what `fraudstream replay` leaves there)."""
    from fraudstream.checks import InputError
    from fraudstream.local import pipeline
    from fraudstream.online.scorers import InProcessScorer

    run_info = pipeline.run_info(workdir)
    log = workdir / run_info["verdict_log"]
    records = read_log_lines(log) if log.is_file() else []
    report_problems: list[str] = []
    rows: list[ArchivedTransaction] = []
    if run_info.get("archive"):
        rows, report_problems = archive.read_directory(workdir / run_info["archive"])
    history = history or (Path(run_info["history"]) if run_info.get("history") else None)
    if history is not None and not history.is_file():
        raise InputError(f"{history}: no such file (the history: transactions before the run)")
    model = model or Path(run_info["model"])
    scorer = InProcessScorer(model) if model.is_file() else None
    report = run(records, rows, f"the local run in {workdir}", history=read_history(history) if history else None,
                 batch_records=batch_records_of(workdir / name for name in run_info["batch_aggregates"]), scorer=scorer,
                 feature_set=run_info["feature_set"], threshold=run_info["threshold"], archive_problems=report_problems,
                 archive_complete=True)
    if not run_info.get("archive"):
        report.problem("the run kept no archive (archive_transactions off)")
    if scorer is None:
        report.problem("model not found; scores not compared", str(model))
    return report


def stack_archive(s3, bucket: str, first_day, last_day) -> tuple[list[ArchivedTransaction], list[str]]:
    """The archived transactions of the UTC days [first_day, last_day] from the data bucket."""
    from datetime import timedelta

    rows, problems = [], []
    day = first_day
    paginator = s3.get_paginator("list_objects_v2")
    while day <= last_day:
        prefix = f"{archive.S3_PREFIX}{archive.PARTITION_PREFIX}{day.isoformat()}/"
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not archive.is_data_file(item["Key"].rsplit("/", 1)[-1]):
                    continue
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8", "replace")
                found, bad = archive.parse_lines(body.splitlines(), f"s3://{bucket}/{item['Key']}")
                rows.extend(found)
                problems.extend(bad)
        day += timedelta(days=1)
    return rows, problems


def stack(deployment, start, end, *, history: Path | None = None, model: Path | None = None,
          threshold: float = c.DEFAULT_THRESHOLD, page_size: int | None = None) -> Report:
    """The report of a deployed stack over [start, end]: the predict log group and the archive in S3.

    The archive is read from a week before ``start`` (the 1-week windows' history; the bucket keeps
    archive_retention_days of it) to ``end``'s day."""
    from datetime import timedelta

    from fraudstream import stack_outputs as out
    from fraudstream.online import aws
    from fraudstream.online.scorers import InProcessScorer
    from fraudstream.operate.deployed import aws_errors
    from fraudstream.operate.log_viewer import read_events, to_ms

    group = deployment.output(out.PREDICT_LOG_GROUP)
    logs = aws.new_client("logs", session=deployment.session)
    records = [(f"{group} event {event.get('eventId', '?')}", log_record(str(event.get("message", ""))))
               for event in read_events(logs, group, to_ms(start), to_ms(end), page_size=page_size)]
    s3 = aws.new_client("s3", session=deployment.session)
    with aws_errors():
        rows, problems = stack_archive(s3, deployment.output(out.DATA_BUCKET),
                                       (start - timedelta(days=7)).date(), end.date())
    scorer = InProcessScorer(model) if model else None
    report = run(records, rows, f"stack {deployment.stack} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
                 history=read_history(history) if history else None, scorer=scorer,
                 feature_set=scorer.feature_set if scorer else c.DEFAULT_FEATURE_SET, threshold=threshold,
                 archive_problems=problems)
    return report
