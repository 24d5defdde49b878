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
