"""The command line: real --help, one clear error line and a non-zero exit on bad input."""

from __future__ import annotations

import signal

import pyarrow.parquet as pq
import pytest

from fraudstream import contract as c
from fraudstream.cli import main
from fraudstream.cli.main import stop_on_signals


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


@pytest.fixture
def restored_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_command_stops_on_a_hangup_unless_started_under_nohup(restored_signals):
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    stop_on_signals()
    with pytest.raises(KeyboardInterrupt):  # what every command's `finally` stops its processes on
        signal.raise_signal(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup leaves it
    stop_on_signals()
    signal.raise_signal(signal.SIGHUP)  # ignored: the command goes on
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    with pytest.raises(KeyboardInterrupt):  # a kill still stops it
        signal.raise_signal(signal.SIGTERM)
