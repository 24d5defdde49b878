"""The local pipeline end to end: local topics, real Flink, both Lambda handlers, the seed scenario."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fraudstream import contract as c

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.flink]

FRAUDSTREAM = str(Path(sys.executable).with_name("fraudstream"))


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([FRAUDSTREAM, *args], capture_output=True, text=True, timeout=900, check=False)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = tmp_path_factory.mktemp("local")
    _run("generate", "--scale", "demo", "--out", str(data / "transactions.parquet"), "-q")
    _run("features", str(data / "transactions.parquet"), "--out", str(data), "-q")
    _run("train", str(data / "features.parquet"), "--out", str(data), "-q")
    return data


def _replay(data: Path, scenario: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run("replay", str(scenario), "--model", str(data / "model.tar.gz"), "--history",
                str(data / "transactions.parquet"), "--history-to-today", "--workdir", str(data / "local"), *extra,
                check=check)


def _flink_scratch() -> set[str]:
    """What a Flink mini-cluster leaves in the system temporary directory when it is stopped (RPC and planner jars, blobs)."""
    return {p.name for p in Path(tempfile.gettempdir()).iterdir()
            if p.name.startswith(("flink-rpc", "flink-web", "flink-table-planner", "minicluster_", "blobStore"))}


def test_the_seed_scenario_is_flagged_by_its_third_transaction(trained):
    _run("scenario", "--transactions", str(trained / "transactions.parquet"), "--out", str(trained / "seed.jsonl"))
    scratch = _flink_scratch()
    result = _replay(trained, trained / "seed.jsonl", "--check-seed-outcome")
    assert _flink_scratch() <= scratch  # Flink's working files stay in the work directory, removed with each run
    assert f"model: {trained / 'model.tar.gz'} (feature set v2, FRAUD above " in result.stdout
    # The cards come from the data the aggregates were computed from: every one has its 1-week history.
    assert "CardsMissingBatchGroup" not in result.stdout
    shown = _run("logs", "--local", str(trained / "local"), "--json")
    assert len(shown.stdout.splitlines()) == 13 and "13 predictions" in shown.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("Prediction:")]
    assert len(lines) == 13
    assert all("NOT FRAUD" in line for line in lines[:3])
    assert "expected outcome met" in result.stdout
    assert "13 transactions sent, 13 verdicts" in result.stdout
    assert "13 on the verdicts topic cc-verdicts (one per transaction)" in result.stdout
    # The verdicts are also in the local log group, as structured records, card numbers masked.
    log = (trained / "local" / "logs" / "verdicts.jsonl").read_text()
    records = [json.loads(line) for line in log.splitlines()]
    assert sum(r["message"].startswith("Prediction:") for r in records) == 13
    cards = {json.loads(line)["cc_num"] for line in (trained / "seed.jsonl").read_text().splitlines()}
    assert not any(str(card) in log for card in cards)
    # The run's features, recomputed by the batch SQL from the history moved to today and the transactions Flink
    # archived: every value of every verdict exact, the 1-week ones (real history) included, no verdict flips.
    report = json.loads(_run("consistency", "--local", str(trained / "local"), "--json").stdout)
    assert report["compared"] == 13 and report["unexplained_values"] == 0 and report["problems"] == {}
    assert all(counts["exact"] == 13 for counts in report["features"].values())
    assert report["features"][c.NUM_TRANS_LAST_1W]["exact"] == 13
    assert report["scores"]["compared"] == 13 and report["scores"]["verdict_flips"] == {}


def test_the_seed_scenario_sent_as_one_burst_is_flagged_by_its_third_and_exact(trained):
    """Card-testing attacks are bursts: the scenario with no delay at all gives the same outcome, every value exact."""
    if not (trained / "seed.jsonl").exists():
        _run("scenario", "--transactions", str(trained / "transactions.parquet"), "--out", str(trained / "seed.jsonl"))
    result = _replay(trained, trained / "seed.jsonl", "--no-delay", "--check-seed-outcome")
    assert "expected outcome met" in result.stdout
    assert "10-minute count below the batch definition: 0 of 13" in result.stdout
    assert "13 on the verdicts topic cc-verdicts (one per transaction)" in result.stdout
    report = json.loads(_run("consistency", "--local", str(trained / "local"), "--json").stdout)
    assert report["unexplained_values"] == 0 and report["scores"]["verdict_flips"] == {}


def test_replay_reports_invalid_lines_by_number_and_scores_the_rest(trained, tmp_path):
    card = json.loads((trained / "seed.jsonl").read_text().splitlines()[0])["cc_num"] if (trained / "seed.jsonl").exists() else 4111111111111111
    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text("\n".join([
        json.dumps({"cc_num": card, "amount": 12.5}),
        "not json",
        json.dumps({"cc_num": card, "amount": "lots"}),
        json.dumps({"cc_num": card, "amount": 3.0, "delay_s": 0.5, "merchant": "M", "zip_code": "Z"}),
    ]) + "\n")
    result = _replay(trained, scenario)
    assert f"{scenario}:2: not JSON; line skipped" in result.stderr
    assert f"{scenario}:3: amount must be a number in [0, 1e+07]; line skipped" in result.stderr
    assert len([line for line in result.stdout.splitlines() if line.startswith("Prediction:")]) == 2
    assert "2 transactions sent, 2 verdicts" in result.stdout


def test_replay_of_a_missing_file_is_one_error_line(trained, tmp_path):
    result = _replay(trained, tmp_path / "nope.jsonl", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("no such file")
