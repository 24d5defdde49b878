"""The command line: real --help, one clear error line and a non-zero exit on bad input."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.cli import main


def _error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


@pytest.mark.parametrize("command", ["generate", "features", "train"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_generate_writes_the_requested_transactions(tmp_path, capsys):
    out = tmp_path / "tx.parquet"
    assert main(["generate", "--cards", "50", "--transactions", "5000", "--seed", "1", "--out", str(out), "-q"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 5000 and len(set(table.column(c.CC_NUM).to_pylist())) == 50
    assert "wrote 5,000 transactions on 50 cards (12 fraudulent)" in capsys.readouterr().out


def test_transactions_and_scale_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--transactions", "10", "--scale", "seed", "--out", str(tmp_path / "x.parquet")])
    assert exit_info.value.code != 0
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transactions", "-5"], "must be a positive integer"),
        (["--cards", "0"], "must be a positive integer"),
        (["--fraud-ratio", "1.5"], "--fraud-ratio must be in [0, 1)"),
        (["--start", "yesterday"], "expected a date"),
        (["--transactions", "1000"], "is 2 fraudulent, too few for one chain of 3: raise --transactions or --fraud-ratio"),
    ],
)
def test_nonsense_generate_parameters_give_one_error_line(args, message, tmp_path, capsys):
    out = tmp_path / "tx.parquet"
    try:
        code = main(["generate", "--out", str(out), *args])
    except SystemExit as exit_info:  # argparse's own validation
        code = exit_info.code
    assert code != 0
    errors = _error_lines(capsys)
    assert len(errors) == 1 and message in errors[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"", "file is empty"), (b"not parquet at all", "not a readable Parquet file")],
)
def test_a_missing_empty_or_malformed_input_gives_one_error_line(content, message, tmp_path, capsys):
    path = tmp_path / "tx.parquet"
    if content is not None:
        path.write_bytes(content)
    for command in (["features", str(path), "--out", str(tmp_path / "out")], ["train", str(path), "--out", str(tmp_path / "out")]):
        assert main(command) == 1
        errors = _error_lines(capsys)
        assert len(errors) == 1 and message in errors[0] and str(path) in errors[0]
    assert not (tmp_path / "out").exists()


def test_a_features_file_with_missing_columns_gives_one_error_line(small_transactions_file, tmp_path, capsys):
    assert main(["train", str(small_transactions_file), "--out", str(tmp_path)]) == 1
    errors = _error_lines(capsys)
    assert len(errors) == 1 and "missing column(s) trans_ts" in errors[0]


def test_a_store_sqlite_cannot_read_is_one_error_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    import sqlite3

    from fraudstream.cli import batch

    def broken(_args):
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(batch, "cmd_generate", broken)
    assert main(["generate", "--out", str(tmp_path / "x.parquet")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == ["fraudstream generate: error: file is not a database"]


def test_version_names_the_release(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fraudstream {version('fraudstream')}"


@pytest.mark.parametrize(("name", "message"), [
    ("tx.csv", "the file written is parquet; give a name ending in .parquet"),
    ("a_directory", "is a directory; give a file name such as"),
])
def test_an_output_that_is_not_a_parquet_file_name_is_refused_before_any_work(name, message, tmp_path, capsys):
    (tmp_path / "a_directory").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--transactions", "100", "--out", str(tmp_path / name)])
    assert exit_info.value.code == 2
    errors = _error_lines(capsys)
    assert len(errors) == 1 and message in errors[0] and ".tmp" not in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_directory"]


def test_a_small_transaction_count_alone_scales_the_cards_with_it(tmp_path, capsys):
    # 540 transactions per card at the demo scale: 2,000 transactions, 4 cards; no --cards needed.
    assert main(["generate", "--transactions", "2000", "--out", str(tmp_path / "tx.parquet"), "-q"]) == 0
    assert "wrote 2,000 transactions on 4 cards (5 fraudulent)" in capsys.readouterr().out
    assert main(["generate", "--transactions", "100", "--out", str(tmp_path / "tx.parquet"), "-q"]) == 0
    assert "wrote 100 transactions on 1 card (0 fraudulent)" in capsys.readouterr().out


def test_replay_with_a_file_that_is_not_a_model_is_one_error_line_before_anything_starts(tmp_path, capsys):
    scenario, features = tmp_path / "s.jsonl", tmp_path / "features.parquet"
    scenario.write_text('{"cc_num": 4000000000000001, "amount": 12.5}\n')
    features.write_bytes(b"PAR1 not a model")
    code = main(["replay", str(scenario), "--model", str(features), "--batch-aggregates", str(features),
                 "--workdir", str(tmp_path / "local"), "-q"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fraudstream replay: error: {features}: not a model archive")
    assert not (tmp_path / "local").exists()


# A command's process: SIGHUP as its parent left it (argv[2]), then the CLI's handlers, then a hangup and a kill.
SIGNALLED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from fraudstream.cli.main import stop_on_signals
signal.signal(signal.SIGHUP, getattr(signal, sys.argv[2]))
signal.signal(signal.SIGTERM, signal.SIG_DFL)
with stop_on_signals():
    for sig in (signal.SIGHUP, signal.SIGTERM):
        try:
            os.kill(os.getpid(), sig)  # a Python handler runs before the next line
            print(sig.name, "went on", flush=True)
        except KeyboardInterrupt:
            print(sig.name, "stopped the command", flush=True)
"""


@pytest.mark.parametrize("parent, hangup", [("SIG_DFL", "stopped the command"), ("SIG_IGN", "went on")],
                         ids=["terminal", "nohup"])
def test_a_command_stops_on_a_hangup_unless_started_under_nohup(parent, hangup):
    import subprocess
    import sys

    from fraudstream.paths import REPO

    done = subprocess.run([sys.executable, "-c", SIGNALLED, str(REPO), parent], capture_output=True, text=True,
                          timeout=60)
    # Then a hangup stops it unless nohup left SIGHUP ignored, and a kill always stops it (its `finally` blocks run)
    assert done.stdout.splitlines() == [f"SIGHUP {hangup}", "SIGTERM stopped the command"], done.stderr


def test_main_called_in_a_process_gives_back_its_signal_handlers(tmp_path, capsys):
    import signal

    def mine(_signum, _frame):
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        # When a command runs in this process and fails (or succeeds)
        assert main(["replay", str(tmp_path / "missing.jsonl"), "--workdir", str(tmp_path / "w"), "-q"]) == 1
        # Then the caller's own handler is back: the CLI's stop handler was for the command's time only
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)

