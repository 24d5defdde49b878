"""Scenario files: transactions to send through the pipeline, and the AWS sample's demo scenario.

A scenario file has one transaction per line: `cc_num`, `amount`, optional `merchant`, `zip_code`,
and `delay_s` (seconds to wait after the previous one). Event times are taken when each transaction
is sent, as a card terminal would stamp them. `fraudstream replay` sends a scenario through the local
pipeline, `fraudstream simulate` to a deployed stack.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudstream import contract as c
from fraudstream.checks import InputError
from fraudstream.files import atomic_path, check_parquet
from fraudstream.offline.train_config import TrainConfig
from fraudstream.online.sending import SCENARIO_KEYS, ScenarioLine, scenario_line

SEED_SCENARIO_LENGTH = 13  # three one-off transactions, then a ten-transaction attack


def read_scenario(path: str | os.PathLike) -> tuple[list[ScenarioLine], list[str]]:
    """The valid lines of a scenario file, and one message per invalid line (with its number), or per line with
    keys the scenario does not know (a typo such as "delay" would otherwise silently mean no delay).

    Lines end at "\\n" only (a U+2028 inside a JSON string stays in its line); a UTF-8 byte-order mark
    is skipped; a line that is not UTF-8 is refused alone. Messages never repeat a line's content.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    valid, problems = [], []
    for line_number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line, unknown = _scenario_line(line_number, raw.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(f"{path}:{line_number}: not UTF-8 text; line skipped")
        except ValueError as exc:
            problems.append(f"{path}:{line_number}: {exc}; line skipped")
        else:
            valid.append(line)
            if unknown:
                problems.append(f"{path}:{line_number}: warning: unknown key{'s' if len(unknown) > 1 else ''} "
                                f"{', '.join(map(repr, unknown))} ignored (a line knows {', '.join(SCENARIO_KEYS)})")
    return valid, problems


def _scenario_line(line_number: int, raw: str) -> tuple[ScenarioLine, list[str]]:
    """One line of a file: JSON, then held to the rules of a scenario line (fraudstream/online/sending.py)."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON") from None
    return scenario_line(line_number, data)


def seed_scenario(transactions_path: str | os.PathLike, seed: int = 0) -> list[ScenarioLine]:
    """The AWS sample's scenario on cards active in the hold-out period (as `fraudstream train` derives it from the
    data's days): one transaction on each of
    three cards (100-5000), then a ten-transaction attack on a fourth (1-50, 1-2 s apart)."""
    check_parquet(transactions_path, {c.CC_NUM: "integer", c.DATETIME: "timestamp"})
    table = pq.read_table(transactions_path, columns=[c.CC_NUM, c.DATETIME])
    if not table.num_rows:
        raise InputError(f"{transactions_path}: no transactions")
    span = pc.min_max(table[c.DATETIME]).as_py()
    holdout_start = TrainConfig().for_data(span["min"].date(), span["max"].date()).holdout_start  # as `train` splits
    start = datetime.combine(holdout_start, datetime.min.time())  # the column is UTC without a zone
    holdout = table.filter(pc.greater_equal(table[c.DATETIME], pa.scalar(start, type=pa.timestamp("us"))))
    cards = np.unique(holdout[c.CC_NUM].to_numpy())
    if len(cards) < 4:
        raise InputError(f"{transactions_path}: fewer than 4 cards with transactions from {holdout_start}")
    rng = np.random.default_rng(seed)
    *one_off, attacked = (int(x) for x in rng.choice(cards, size=4, replace=False))
    lines = [ScenarioLine(i + 1, card, round(float(rng.uniform(100, 5000)), 2), 0.0, f"Merchant-{i}", f"zip-{i}")
             for i, card in enumerate(one_off)]
    lines += [ScenarioLine(len(one_off) + i + 1, attacked, round(float(rng.uniform(1, 50)), 2),
                           round(float(rng.uniform(1, 2)), 2)) for i in range(10)]
    return lines


def write_scenario(lines: list[ScenarioLine], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(line.as_json()) + "\n" for line in lines), encoding="utf-8")


def seed_outcome(verdicts: list[bool]) -> tuple[bool, str]:
    """Is this the expected outcome of the sample's scenario (three one-offs, then ten attacks)?"""
    if len(verdicts) != SEED_SCENARIO_LENGTH:
        return False, f"expected {SEED_SCENARIO_LENGTH} verdicts, got {len(verdicts)}"
    one_offs, attack = verdicts[:3], verdicts[3:]
    first = next((i for i, fraud in enumerate(attack) if fraud), None)
    checks = [
        (not any(one_offs), "the three one-off transactions are NOT FRAUD"),
        (first is not None and first <= 2, "the attack is flagged no later than its third transaction"),
        (first is not None and all(attack[first:]), "every attack transaction after the first flag is FRAUD"),
    ]
    failed = [text for ok, text in checks if not ok]
    if failed:
        return False, "not met: " + "; ".join(failed)
    return True, f"met: one-offs NOT FRAUD, attack flagged from transaction {first + 1}, FRAUD from then on"
