"""Scenario files and the AWS sample's scenario: read with line numbers, written back the same."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.local.scenario import (
    ScenarioLine,
    read_scenario,
    seed_outcome,
    seed_scenario,
    write_scenario,
)

CARD = 4111111111111111


def test_valid_lines_are_read_and_each_invalid_one_is_named_by_its_number(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([
        json.dumps({c.CC_NUM: CARD, c.AMOUNT: 12.5}),
        "not json",
        json.dumps({c.CC_NUM: str(CARD), c.AMOUNT: 1, "delay_s": 1.5, c.MERCHANT: "M", c.ZIP_CODE: "Z"}),
        json.dumps({c.CC_NUM: 2**63, c.AMOUNT: 1}),
        json.dumps({c.CC_NUM: CARD, c.AMOUNT: -1}),
        json.dumps({c.CC_NUM: CARD, c.AMOUNT: 1, "delay_s": 4000}),
        "",
    ]))
    lines, problems = read_scenario(path)
    assert lines == [ScenarioLine(1, CARD, 12.5, 0.0), ScenarioLine(3, CARD, 1.0, 1.5, "M", "Z")]
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (2, 4, 5, 6)]
    assert "cc_num must be a card number" in problems[1] and "delay_s above 3600" in problems[3]


def test_unknown_keys_are_warned_with_the_line_number_and_the_line_is_still_sent(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({c.CC_NUM: CARD, c.AMOUNT: 5.0, "delay": 5}) + "\n"
                    + json.dumps({c.CC_NUM: CARD, c.AMOUNT: 6.0, "delay_s": 2}) + "\n")
    lines, problems = read_scenario(path)
    assert [(line.line, line.delay_s) for line in lines] == [(1, 0.0), (2, 2.0)]  # "delay" is no delay: say so
    assert problems == [f"{path}:1: warning: unknown key 'delay' ignored "
                        f"(a line knows cc_num, amount, merchant, zip_code, delay_s)"]


def test_an_unreadable_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_scenario(tmp_path / "missing.jsonl")



def test_lines_end_at_newlines_only_a_bom_is_skipped_and_a_bad_byte_costs_its_own_line(tmp_path):
    line = json.dumps({c.CC_NUM: CARD, c.AMOUNT: 1.0, c.MERCHANT: "a\u2028b"}, ensure_ascii=False)
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n\xff\xfe garbage\n" + line.encode() + b"\n")
    lines, problems = read_scenario(path)
    assert [entry.line for entry in lines] == [1, 3]  # U+2028 inside a string is not a line break
    assert lines[0].merchant == "a\u2028b"
    assert problems == [f"{path}:2: not UTF-8 text; line skipped"]


def test_problems_never_repeat_the_card_number(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({c.CC_NUM: "4111x111111111111", c.AMOUNT: 1.0}) + "\n")
    _, [problem] = read_scenario(path)
    assert "4111" not in problem and "cc_num must be a card number" in problem


def test_the_sample_scenario_is_three_one_offs_then_a_ten_transaction_attack_and_survives_a_round_trip(
        small_transactions_file, tmp_path):
    lines = seed_scenario(small_transactions_file, seed=3)
    assert len(lines) == 13 and len({line.cc_num for line in lines[:3]} | {lines[3].cc_num}) == 4
    assert all(100 <= line.amount <= 5000 and line.delay_s == 0 for line in lines[:3])
    assert {line.cc_num for line in lines[3:]} == {lines[3].cc_num}
    assert all(1 <= line.amount <= 50 and 1 <= line.delay_s <= 2 for line in lines[3:])
    write_scenario(lines, tmp_path / "seed.jsonl")
    again, problems = read_scenario(tmp_path / "seed.jsonl")
    assert problems == [] and again == lines


@pytest.mark.parametrize("verdicts, ok", [
    ([False] * 3 + [False, False] + [True] * 8, True),
    ([False] * 3 + [True] * 10, True),
    ([True] + [False] * 2 + [True] * 10, False),  # a one-off flagged
    ([False] * 3 + [False] * 3 + [True] * 7, False),  # flagged only at the fourth
    ([False] * 3 + [False, False, True, False] + [True] * 6, False),  # not FRAUD from then on
    ([False] * 12, False),
])
def test_the_expected_outcome_of_the_sample_scenario(verdicts, ok):
    assert seed_outcome(verdicts)[0] is ok


def test_the_readme_s_sample_scenario_is_a_valid_scenario(tmp_path):
    from fraudstream.paths import REPO

    readme = (REPO / "README.md").read_text()
    block = readme.split("cat > my.jsonl <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    path = tmp_path / "my.jsonl"
    path.write_text(block + "\n")
    lines, problems = read_scenario(path)
    assert problems == [] and len(lines) == 3 and [line.delay_s for line in lines] == [0.0, 2.0, 1.5]
