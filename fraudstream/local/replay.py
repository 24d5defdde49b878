"""A scenario through the local pipeline, and the report `fraudstream replay` prints about it.

Each line waits its delay, is stamped with the time it is sent (as a card terminal would) and sent;
then the replay waits for every verdict. The report compares each verdict's 10-minute count with what
the batch definition gives for the transactions sent, in the order sent (docs/local-pipeline.md: "The local
pipeline").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.contract import RecordRef
from fraudstream.flink_properties import EventTime
from fraudstream.local.scenario import ScenarioLine, read_scenario, seed_outcome
from fraudstream.online.verdict import Verdict

ARCHIVE_WAIT_S = 30.0  # after the last verdict, for Flink to commit the archive (about 2 s locally)


@dataclass
class ReplayResult:
    messages: list[dict]  # the transaction messages sent, in order
    verdicts: list[Verdict | None]  # the verdict of each, None if it did not come in time
    latencies: list[float]  # send to verdict, seconds, sorted: the end-to-end lag (transactions are stamped when sent)
    complete: bool
    keys: list[RecordRef] = field(default_factory=list)  # where each message sat on the transactions topic
    line_numbers: list[int] = field(default_factory=list)  # the scenario line of each message
    refusals: dict[RecordRef, str] = field(default_factory=dict)  # key -> why the handler gave no verdict
    interrupted: bool = False  # Ctrl-C: the lines after the last message were not sent

    @property
    def received(self) -> list[Verdict]:
        return [v for v in self.verdicts if v is not None]

    def below_batch_count(self) -> int:
        """Verdicts whose 10-minute count is below the batch definition's for the transactions sent."""
        truth = true_10m_counts(self.messages)
        return sum(v is not None and v.features[c.NUM_TRANS_LAST_10M] < n for v, n in zip(self.verdicts, truth))

    def seed_outcome(self) -> tuple[bool, str]:
        return seed_outcome([v is not None and v.fraud for v in self.verdicts])

    def summary_lines(self) -> list[str]:
        received = self.received
        lines = [f"{len(self.messages)} transactions sent, {len(received)} verdicts "
                 f"({sum(v.fraud for v in received)} FRAUD)"]
        if self.latencies:
            lat = self.latencies
            lines.append(f"send to verdict: p50 {lat[len(lat) // 2]:.2f} s, p99 {percentile(lat, 99):.2f} s, "
                         f"max {lat[-1]:.2f} s (the end-to-end lag: transactions are stamped when sent)")
        below = self.below_batch_count()
        lines.append(f"10-minute count below the batch definition: {below} of {len(self.messages)}")
        late = sum(v.late for v in received)
        if late:
            lines.append(f"late: {late} transaction(s) came behind Flink's watermark and were scored on themselves "
                         "alone (the LateTransactions metric)")
        cards = {m[c.CC_NUM] for m in self.messages}
        no_week = {m[c.CC_NUM] for m, v in zip(self.messages, self.verdicts) if v is not None and v.batch_record_age_s is None}
        if no_week:
            lines.append(f"warning: {len(no_week)} of {len(cards)} cards had no 1-week history in the batch aggregates "
                         "loaded (the CardsMissingBatchGroup metric): their 1-week features hold only this run's "
                         "transactions; pick cards from the data the aggregates came from")
        for number, key, verdict in zip(self.line_numbers, self.keys, self.verdicts):
            if verdict is None:
                reason = self.refusals.get(key, "the predict handler logged no reason; see its log (logs/handlers.jsonl)")
                lines.append(f"line {number}: no verdict: {reason}")
        if self.interrupted:
            lines.append("interrupted: the figures above cover the transactions sent before Ctrl-C")
        return lines


def run(lines: list[ScenarioLine], pipeline, verdict_timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> ReplayResult:
    """Send ``lines`` through a started pipeline (local/pipeline.py) and wait for their verdicts."""
    sent_at, messages, numbers = {}, [], []  # place -> send time, in send order
    interrupted, complete = False, False
    try:
        for line in lines:
            if line.delay_s:
                sleep(line.delay_s)
            message = line.message(clock())
            sent_at[pipeline.send(message)] = time.monotonic()
            messages.append(message)
            numbers.append(line.line)
        complete = pipeline.wait_for_verdicts(len(lines), verdict_timeout)
    except KeyboardInterrupt:  # report what was sent so far
        interrupted = True
    got = pipeline.results()
    verdicts = [got.verdicts.get(key) for key in sent_at]
    latencies = sorted(got.arrival[key] - sent_at[key] for key in sent_at if key in got.arrival)
    return ReplayResult(messages, verdicts, latencies, complete, list(sent_at), numbers, got.refusals, interrupted)


@dataclass(frozen=True)
class ReplayOptions:
    """What `fraudstream replay` takes (its --help explains each)."""

    scenario: Path
    model: Path
    workdir: Path
    batch_aggregates: Path
    history: Path | None = None  # default: transactions.parquet beside batch_aggregates, if there
    history_to_today: bool = False  # move the history to end at today's 00:00 UTC (and the 1-week records with it)
    no_delay: bool = False  # send every line at once
    verdict_timeout: float = 60.0
    event_time: EventTime = EventTime()  # the Flink job's out-of-orderness and tick delay


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did: its result, and what it ran with."""

    result: ReplayResult
    feature_set: str
    threshold: float
    batch_aggregates: Path  # the 1-week records loaded
    archive_missing: int  # transactions not in the archive after ARCHIVE_WAIT_S
    verdict_log: Path
    handler_log: Path
    published: int = 0  # records on the verdicts topic (one per transaction scored)


def replay(options: ReplayOptions, on_verdict: Callable[[Verdict], None] = lambda _v: None,
           progress: Callable[[str], None] = lambda _m: None,
           warn: Callable[[str], None] = lambda _m: None) -> ReplayReport:
    """`fraudstream replay`: check the inputs (the model once, before anything starts), start the local pipeline
    on the work directory, send the scenario and wait for its verdicts and its archive. ``warn`` gets each
    scenario line that cannot be sent; InputError for inputs that cannot be used at all."""
    from fraudstream.local.pipeline import LocalPipeline, PipelineOptions
    from fraudstream.offline import model_artifact

    lines, problems = read_scenario(options.scenario)
    for problem in problems:
        warn(problem)
    if not lines:
        raise InputError(f"{options.scenario}: no valid transaction to replay")
    if options.history_to_today and options.history is None:
        raise InputError("--history-to-today needs --history TX.parquet (the transactions to move)")
    for path, what in ((options.model, "run `fraudstream train` (or `make demo`)"),
                       (options.history if options.history_to_today else options.batch_aggregates,
                        "run `fraudstream features` (or `make demo`)")):
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file; {what}")
    feature_set = model_artifact.feature_set_of(model_artifact.load_artifact(options.model))  # a bad model: one line
    history = options.history or Path(options.batch_aggregates).with_name("transactions.parquet")
    if options.history is not None and not history.is_file():
        raise InputError(f"--history {history}: no such file")
    batch_aggregates = options.batch_aggregates
    if options.history_to_today:
        from fraudstream.local.history import present_history

        moved = present_history(history, Path(options.workdir) / "history", progress=progress)
        history, batch_aggregates = moved["history"], moved["batch_aggregates"]
    if options.no_delay:
        lines = [replace(line, delay_s=0.0) for line in lines]
    run_options = PipelineOptions(history=history if history.is_file() else None, feature_set=feature_set,
                                  event_time=options.event_time)
    pipeline = LocalPipeline(options.workdir, options.model, run_options, on_verdict=on_verdict, log=progress)
    with pipeline:
        pipeline.start(batch_aggregates)
        used = pipeline.predict_settings
        progress(f"replaying {len(lines)} transactions from {options.scenario}")
        result = run(lines, pipeline, verdict_timeout=options.verdict_timeout)
        missing = 0 if result.interrupted else pipeline.wait_for_archive(result.keys, ARCHIVE_WAIT_S)
        published = pipeline.verdicts_on_topic()  # each verdict was written there before it was logged
    return ReplayReport(result, used.feature_set, used.threshold, Path(batch_aggregates), missing,
                        pipeline.verdict_log, pipeline.handler_log, published)


def percentile(ordered: list[float], q: float) -> float:
    """The ``q``-th percentile of a sorted list (nearest rank)."""
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def true_10m_counts(sent: list[dict]) -> list[int]:
    """The batch definition's 10-minute count of each sent transaction (what the online path aims at)."""
    counts = []
    for i, tx in enumerate(sent):
        ms = c.event_ms(tx[c.TRANS_TS])
        counts.append(sum(1 for other in sent[: i + 1] if other[c.CC_NUM] == tx[c.CC_NUM]
                          and ms - c.WINDOW_10M_SECONDS * 1000 <= c.event_ms(other[c.TRANS_TS]) <= ms))
    return counts
