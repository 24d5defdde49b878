"""The transactions archive read back (fraudstream/archive.py): Flink's JSON lines, bad lines named by number."""

from __future__ import annotations

import json

from fraudstream import archive
from fraudstream.archive import ArchivedTransaction

GOOD = {"cc_num": 4111, "amount": 12.5, "trans_ts": 1_653_004_799.0, "tid": "t1", "topic": "cc-transactions",
        "partition": 2, "offset": 7, "dt": "2022-05-19"}


def test_a_line_gives_the_transaction_and_its_place_in_the_topic():
    [row], problems = archive.parse_lines([json.dumps(GOOD)], "f")
    assert problems == [] and row == ArchivedTransaction(4111, 12.5, 1_653_004_799.0, "cc-transactions", 2, 7, "t1")
    assert row.key == ("cc-transactions", 2, 7)


def test_bad_lines_are_named_by_number_and_the_rest_are_kept():
    lines = [json.dumps(GOOD), "{not json", json.dumps({**GOOD, "amount": "x"}), "",
             json.dumps({k: v for k, v in GOOD.items() if k != "offset"}), json.dumps([1]),
             json.dumps({**GOOD, "tid": None, "offset": 8})]
    rows, problems = archive.parse_lines(lines, "part-0")
    assert [r.offset for r in rows] == [7, 8] and rows[1].tid is None
    assert [p.split(": ", 1)[0] for p in problems] == ["part-0:2", "part-0:3", "part-0:5", "part-0:6"]
    assert problems[1] == "part-0:3: amount is missing or not a number"
    assert problems[2] == "part-0:5: no topic, partition and offset (archived before they were kept?)"


def test_a_directory_yields_the_committed_part_files_of_every_day_only(tmp_path):
    for day, name in (("dt=2022-05-19", "part-a-0"), ("dt=2022-05-20", "part-a-1"), ("dt=2022-05-20", ".part-a-2.inprogress"),
                      ("dt=2022-05-20", "_SUCCESS"), ("other", "part-x")):
        (tmp_path / day).mkdir(exist_ok=True)
        (tmp_path / day / name).write_text(json.dumps({**GOOD, "offset": len(list(tmp_path.rglob("*")))}) + "\n")
    assert [p.name for p in archive.data_files(tmp_path)] == ["part-a-0", "part-a-1"]
    rows, problems = archive.read_directory(tmp_path)
    assert len(rows) == 2 and problems == []
    assert archive.read_directory(tmp_path / "missing") == ([], [])
