"""Scenarios through the local pipeline: the seed's demo scenario, and any JSON-lines file.

A scenario file has one transaction per line: `cc_num`, `amount`, optional `merchant`,
`zip_code`, and `delay_s` (seconds to wait after the previous one). Event times are taken when
each transaction is sent, as a card terminal would stamp them.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np

from fraudstream import contract as c
from fraudstream.files import InputError, atomic_path, check_parquet

MAX_DELAY_S = 3600.0
HOLDOUT_START = date(2022, 5, 15)


@dataclass(frozen=True)
class ScenarioLine:
    line: int
    cc_num: int
    amount: float
    delay_s: float
    merchant: str = "Random Corp"
    zip_code: str = "03099"

    def message(self, trans_ts: float) -> dict:
        return {c.CC_NUM: self.cc_num, c.MERCHANT: self.merchant, c.AMOUNT: self.amount, c.ZIP_CODE: self.zip_code,
                c.TRANS_TS: trans_ts}


def read_scenario(path: str | os.PathLike) -> tuple[list[ScenarioLine], list[str]]:
    """The valid lines of a scenario file, and one message per invalid line (with its number)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    valid, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            valid.append(_scenario_line(number, raw))
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}; line skipped")
    return valid, problems


def _scenario_line(number: int, raw: str) -> ScenarioLine:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    card, amount, delay = data.get(c.CC_NUM), data.get(c.AMOUNT), data.get("delay_s", 0)
    if isinstance(card, str) and card.isdigit():
        card = int(card)
    if isinstance(card, bool) or not isinstance(card, int) or not 0 < card < 2**63:
        raise ValueError("cc_num must be a card number")
    for name, value in ((c.AMOUNT, amount), ("delay_s", delay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number")
    if delay > MAX_DELAY_S:
        raise ValueError(f"delay_s above {MAX_DELAY_S:g}")
    return ScenarioLine(number, card, float(amount), float(delay), str(data.get(c.MERCHANT, "Random Corp"))[:100],
                        str(data.get(c.ZIP_CODE, "03099"))[:20])


def seed_scenario(transactions_path: str | os.PathLike, seed: int = 0) -> list[dict]:
    """The seed notebook's scenario on cards active in the hold-out period: one transaction on each
    of three cards (100-5000), then a ten-transaction attack on a fourth (1-50, 1-2 s apart)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    check_parquet(transactions_path, {c.CC_NUM: "integer", c.DATETIME: "timestamp"})
    table = pq.read_table(transactions_path, columns=[c.CC_NUM, c.DATETIME])
    start = datetime.combine(HOLDOUT_START, datetime.min.time(), tzinfo=timezone.utc)
    holdout = table.filter(pc.greater_equal(table[c.DATETIME], pa.scalar(start.replace(tzinfo=None), type=pa.timestamp("us"))))
    cards = np.unique(holdout[c.CC_NUM].to_numpy())
    if len(cards) < 4:
        raise InputError(f"{transactions_path}: fewer than 4 cards with transactions from {HOLDOUT_START}")
    rng = np.random.default_rng(seed)
    *one_off, attacked = (int(x) for x in rng.choice(cards, size=4, replace=False))
    lines = [{c.CC_NUM: card, c.AMOUNT: round(float(rng.uniform(100, 5000)), 2), c.MERCHANT: f"Merchant-{i}",
              c.ZIP_CODE: f"zip-{i}", "delay_s": 0.0} for i, card in enumerate(one_off)]
    lines += [{c.CC_NUM: attacked, c.AMOUNT: round(float(rng.uniform(1, 50)), 2), c.MERCHANT: "Random Corp",
               c.ZIP_CODE: "03099", "delay_s": round(float(rng.uniform(1, 2)), 2)} for _ in range(10)]
    return lines


def write_scenario(lines: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def seed_outcome(verdicts: list[bool]) -> tuple[bool, str]:
    """Is this the expected outcome of the seed's scenario (three one-offs, then ten attacks)?"""
    if len(verdicts) != 13:
        return False, f"expected 13 verdicts, got {len(verdicts)}"
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


def run(lines: list[ScenarioLine], pipeline, out, verdict_timeout: float = 60.0) -> dict:
    """Send ``lines`` through a started pipeline, printing each verdict line as it arrives."""
    sent_at, messages = {}, []
    for line in lines:
        if line.delay_s:
            time.sleep(line.delay_s)
        message = line.message(time.time())
        offset = pipeline.send(message)
        sent_at[offset] = time.monotonic()
        messages.append(message)
    complete = pipeline.wait_for_verdicts(len(lines), verdict_timeout)
    verdicts = [pipeline.verdicts.get(offset) for offset in sorted(sent_at)]
    latencies = sorted(pipeline.arrival[o] - sent_at[o] for o in sent_at if o in pipeline.arrival)
    return {"complete": complete, "verdicts": verdicts, "messages": messages, "latencies": latencies, "out": out}
