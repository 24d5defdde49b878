"""A scenario through a started pipeline, and the report `fraudstream replay` prints (a stand-in pipeline here;
tests/integration/test_local_pipeline.py runs the real one)."""

from __future__ import annotations

from fraudstream import contract as c
from fraudstream.local.pipeline import Collected
from fraudstream.local.replay import ReplayResult, run, true_10m_counts
from fraudstream.local.scenario import ScenarioLine
from fraudstream.online.verdict import Verdict

CARD, OTHER = 4111111111111111, 5500000000000004


class EchoPipeline:
    """Answers every transaction with a verdict whose count is the number of the card's transactions so far,
    except the ones listed in ``late`` (counted one short) and ``lost`` (no verdict)."""

    def __init__(self, late=(), lost=(), refusals=None, interrupt_at=None, week=True):
        self.late, self.lost, self.refusals, self.interrupt_at, self.week = set(late), set(lost), refusals or {}, interrupt_at, week
        self.sent, self.verdicts, self.arrival, self.by_card = 0, {}, {}, {}

    def send(self, message):
        if self.sent == self.interrupt_at:
            raise KeyboardInterrupt
        offset, self.sent = self.sent, self.sent + 1
        card = message[c.CC_NUM]
        self.by_card[card] = self.by_card.get(card, 0) + 1
        if offset not in self.lost:
            count = self.by_card[card] - (offset in self.late)
            score = 0.9 if count >= 3 else 0.1
            self.verdicts[offset] = Verdict(card=c.mask_card(card), amount=message[c.AMOUNT], score=score,
                                            verdict=c.verdict(score, 0.25), features={c.NUM_TRANS_LAST_10M: count,
                                                                                       c.AVG_AMT_LAST_10M: 1.0},
                                            batch_record_age_s=3600.0 if self.week else None)
            self.arrival[offset] = 0.0
        return offset

    def wait_for_verdicts(self, count, timeout):
        return len(self.verdicts) >= count

    def results(self):
        return Collected(dict(self.verdicts), dict(self.arrival), dict(self.refusals))


def lines(cards):
    return [ScenarioLine(i + 1, card, 10.0, 1.0 if i else 0.0) for i, card in enumerate(cards)]


def test_each_line_waits_its_delay_and_is_stamped_when_sent():
    slept, now = [], [1000.0]

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    result = run(lines([CARD, CARD, OTHER]), EchoPipeline(), sleep=sleep, clock=lambda: now[0])
    assert slept == [1.0, 1.0]
    assert [m[c.TRANS_TS] for m in result.messages] == [1000.0, 1001.0, 1002.0]
    assert result.complete and len(result.received) == 3


def test_the_report_counts_verdicts_fraud_and_counts_below_the_batch_definition():
    result = run(lines([CARD] * 4 + [OTHER]), EchoPipeline(late={3}), sleep=lambda s: None)
    summary = result.summary_lines()
    assert summary[0] == "5 transactions sent, 5 verdicts (2 FRAUD)"  # counts 3 and 3 (one late)
    assert result.below_batch_count() == 1
    assert "10-minute count below the batch definition: 1 of 5" in summary
    assert not any(line.startswith("warning") for line in summary)  # every card had its 1-week record


def test_no_count_below_the_batch_definition_reads_as_none_below():
    summary = run(lines([CARD, CARD]), EchoPipeline(), sleep=lambda s: None).summary_lines()
    assert "10-minute count below the batch definition: 0 of 2" in summary


def test_cards_without_a_1_week_record_in_the_loaded_aggregates_are_warned_about():
    summary = run(lines([CARD, CARD, OTHER]), EchoPipeline(week=False), sleep=lambda s: None).summary_lines()
    assert any(line.startswith("warning: 2 of 2 cards had no 1-week history in the batch aggregates loaded "
                               "(the CardsMissingBatchGroup metric)") for line in summary)


def test_a_transaction_without_verdict_is_named_by_its_line_with_the_handler_s_reason():
    refusals = {1: "invalid record skipped: amount is out of range [0, 1e+07]"}
    result = run(lines([CARD, OTHER, CARD, OTHER]), EchoPipeline(lost={1, 3}, refusals=refusals), verdict_timeout=0,
                 sleep=lambda s: None)
    summary = result.summary_lines()
    assert "line 2: no verdict: invalid record skipped: amount is out of range [0, 1e+07]" in summary
    assert any(line.startswith("line 4: no verdict: the predict handler logged no reason") for line in summary)


def test_ctrl_c_while_sending_still_reports_what_was_sent():
    result = run(lines([CARD, OTHER, CARD, OTHER]), EchoPipeline(interrupt_at=2), sleep=lambda s: None)
    assert result.interrupted and not result.complete
    summary = result.summary_lines()
    assert summary[0] == "2 transactions sent, 2 verdicts (0 FRAUD)"
    assert summary[-1].startswith("interrupted: the figures above cover the transactions sent before Ctrl-C")


def test_a_missing_verdict_leaves_a_gap_in_its_place_and_the_replay_incomplete():
    result = run(lines([CARD, OTHER, CARD]), EchoPipeline(lost={1}), verdict_timeout=0, sleep=lambda s: None)
    assert not result.complete
    assert [v is None for v in result.verdicts] == [False, True, False]
    assert result.seed_outcome()[0] is False


def test_the_batch_count_includes_the_transaction_and_the_card_s_last_ten_minutes():
    sent = [{c.CC_NUM: CARD, c.TRANS_TS: t} for t in (0.0, 300.0, 600.0, 601.0)] + [{c.CC_NUM: OTHER, c.TRANS_TS: 601.0}]
    assert true_10m_counts(sent) == [1, 2, 3, 3, 1]


def test_an_empty_result_reports_no_latency():
    assert ReplayResult([], [], [], True).summary_lines()[0] == "0 transactions sent, 0 verdicts (0 FRAUD)"


def _verdict(late):
    return Verdict(card="411111******1111", amount=1.0, score=0.1, verdict=c.NOT_FRAUD,
                   features={c.NUM_TRANS_LAST_10M: 1, c.AVG_AMT_LAST_10M: 1.0}, late=late)


def test_the_report_gives_the_end_to_end_lag_and_counts_late_transactions():
    # Given 100 verdicts, 3 of them late, and send-to-verdict latencies 0.01 .. 1.00 s
    result = ReplayResult([{c.CC_NUM: CARD, c.TRANS_TS: 0.0, c.AMOUNT: 1.0}] * 100, [_verdict(i < 3) for i in range(100)],
                          [i / 100 for i in range(1, 101)], True)
    summary = result.summary_lines()
    assert any(line.startswith("late: 3 transaction(s) came behind Flink's watermark") for line in summary)
    assert any(line.startswith("send to verdict: p50 0.51 s, p99 0.99 s, max 1.00 s (the end-to-end lag")
               for line in summary)


def test_the_entry_point_refuses_unusable_inputs_with_one_line_before_anything_starts(tmp_path):
    import pytest

    from fraudstream.checks import InputError
    from fraudstream.local.replay import ReplayOptions, replay

    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text('{"cc_num": "not a card"}\n')
    options = ReplayOptions(scenario=scenario, model=tmp_path / "model.tar.gz", workdir=tmp_path / "work",
                            batch_aggregates=tmp_path / "batch_aggregates.parquet")
    warned = []
    with pytest.raises(InputError, match="no valid transaction to replay"):
        replay(options, warn=warned.append)
    assert len(warned) == 1 and warned[0].endswith("scenario.jsonl:1: cc_num must be a card number; line skipped")
    scenario.write_text('{"cc_num": 4111111111111111, "amount": 1.0}\n')
    with pytest.raises(InputError, match="model.tar.gz: no such file; run `fraudstream train`"):
        replay(options)
    with pytest.raises(InputError, match="--history-to-today needs --history"):
        replay(ReplayOptions(**{**options.__dict__, "history_to_today": True}))
    assert not (tmp_path / "work").exists()  # nothing started


def test_replay_runs_the_flink_job_with_the_event_time_it_is_given(tmp_path, monkeypatch):
    import json

    from fraudstream import flink_properties as flink
    from fraudstream.checks import InputError
    from fraudstream.cli import main
    from fraudstream.local.pipeline import LocalPipeline
    from tests.support.models import write_model

    written = {}

    def start(self, batch_aggregates):  # what the job would be started with, then stop before any server starts
        self.flink.directory.mkdir(parents=True, exist_ok=True)
        groups = json.loads(self.flink._write_properties().read_text())
        written.update(next(g["PropertyMap"] for g in groups if g["PropertyGroupId"] == flink.PROPERTY_GROUP))
        raise InputError("stopped before the servers")

    monkeypatch.setattr(LocalPipeline, "start", start)
    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text('{"cc_num": 4111111111111111, "amount": 1.0}\n')
    (tmp_path / "batch_aggregates.parquet").touch()
    common = ["replay", str(scenario), "--model", str(write_model(tmp_path / "model.tar.gz")), "-q",
              "--batch-aggregates", str(tmp_path / "batch_aggregates.parquet"), "--workdir", str(tmp_path / "work")]
    assert main([*common, "--max-out-of-orderness", "2.5", "--tick-delay-ms", "500"]) == 1
    assert (written["max.out.of.orderness.seconds"], written["tick.delay.ms"]) == ("2.5", "500")
    assert main(common) == 1  # the stack's defaults
    assert (written["max.out.of.orderness.seconds"], written["tick.delay.ms"]) == ("0", "200")


def test_replay_refuses_an_event_time_the_job_would_refuse(tmp_path, capsys):
    import pytest

    from fraudstream.cli import main

    within = "expected 0 to 60 seconds in whole milliseconds with time ticks (a tick waits that long)"
    for option, value, expected in (("--max-out-of-orderness", "61", within), ("--max-out-of-orderness", "soon", within),
                                    ("--max-out-of-orderness", "0.0005", within),
                                    ("--tick-delay-ms", "150", "expected a multiple of 100 ms up to 60000")):
        with pytest.raises(SystemExit) as exit_info:
            main(["replay", str(tmp_path / "s.jsonl"), option, value])
        assert exit_info.value.code == 2
        assert f"error: argument {option}: {expected}, got '{value}'" in capsys.readouterr().err
