"""One transaction's verdict: the record the predict handler logs, and what every reader of that log gets back.

The predict handler logs it (one Powertools JSON line per transaction: the AWS sample's message plus
these fields); `fraudstream logs` reads it back from CloudWatch and the local pipeline from its log
handler, both through `Verdict.from_log`, so the three agree on one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from fraudstream import contract as c
from fraudstream.checks import CheckError, finite_number
from fraudstream.contract import RecordRef
from fraudstream.online.messages import TransactionFeatures


class UnreadableVerdict(ValueError):
    """A log record that carries a verdict but cannot be read as one (the reason names the field)."""


class Verdict(NamedTuple):
    """One per transaction, made and logged on the predict handler's hot path: a NamedTuple (immutable, and
    built in a third of a frozen dataclass's time)."""

    card: str  # masked: first six and last four digits
    amount: float
    score: float
    verdict: str  # contract.FRAUD or contract.NOT_FRAUD
    features: dict[str, Any]
    trans_ts: float | None = None
    tid: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    # Transaction time minus the time of the card's 1-week record (the nightly batch run's; None: no record).
    batch_record_age_s: float | None = None
    # It came behind Flink's watermark: scored on itself alone (docs/streaming.md: "Late transactions").
    late: bool = False

    @classmethod
    def of(cls, transaction: TransactionFeatures, features: dict[str, Any], score: float, threshold: float,
           batch_record_age_s: float | None = None) -> Verdict:
        ref = transaction.ref
        return cls(card=c.mask_card(transaction.cc_num), amount=transaction.amount, score=score,
                   verdict=c.verdict(score, threshold), features=features, trans_ts=transaction.trans_ts,
                   tid=transaction.tid, topic=ref.topic, partition=ref.partition, offset=ref.offset,
                   batch_record_age_s=batch_record_age_s, late=transaction.late)

    def place(self) -> RecordRef:
        """Where its transaction sat on the transactions topic."""
        return RecordRef(self.topic or "", -1 if self.partition is None else self.partition,
                         -1 if self.offset is None else self.offset)

    @property
    def fraud(self) -> bool:
        return self.verdict == c.FRAUD

    def message(self) -> str:
        """The AWS sample's log line, card masked."""
        return (
            f"Prediction: {self.verdict} ({self.score:.6f}), num last 10m: {self.features[c.NUM_TRANS_LAST_10M]}, "
            f"avg amt last 10m: {self.features[c.AVG_AMT_LAST_10M]:.2f}, card num: {self.card}, "
            f"amount: {self.amount:.2f}"
        )

    def log_fields(self) -> dict[str, Any]:
        """The fields logged beside the message (docs/online-path.md: "The online path")."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset, "card": self.card,
                "tid": self.tid, c.TRANS_TS: self.trans_ts, c.AMOUNT: self.amount, "score": self.score,
                "verdict": self.verdict, "features": self.features,
                "batch_record_age_s": self.batch_record_age_s, "late": self.late}

    @classmethod
    def from_log(cls, record: Mapping[str, Any]) -> Verdict:
        """The verdict of a logged record (its log_fields, possibly among other keys); UnreadableVerdict otherwise."""
        verdict = record.get("verdict")
        if verdict not in (c.FRAUD, c.NOT_FRAUD):
            raise UnreadableVerdict(f"unknown verdict {verdict!r}")
        card, features = record.get("card"), record.get("features")
        if not isinstance(card, str) or not isinstance(features, dict):
            raise UnreadableVerdict("no card or features")
        count = _logged_number(features, c.NUM_TRANS_LAST_10M)
        _logged_number(features, c.AVG_AMT_LAST_10M)
        trans_ts = _optional_number(record, c.TRANS_TS)
        offset, partition = record.get("offset"), record.get("partition")
        batch_age = _optional_number(record, "batch_record_age_s")
        return cls(card=card, amount=_logged_number(record, c.AMOUNT), score=_logged_number(record, "score"), verdict=verdict,
                   features={**features, c.NUM_TRANS_LAST_10M: int(count)}, trans_ts=trans_ts,
                   tid=record.get("tid") if isinstance(record.get("tid"), str) else None,
                   topic=record.get("topic") if isinstance(record.get("topic"), str) else None,
                   partition=partition if isinstance(partition, int) else None,
                   offset=offset if isinstance(offset, int) else None, batch_record_age_s=batch_age,
                   late=record.get("late") is True)


def _optional_number(record: Mapping[str, Any], key: str) -> float | None:
    try:
        return finite_number(record.get(key))
    except CheckError:
        return None


def _logged_number(record: Mapping[str, Any], key: str) -> float:
    try:
        return finite_number(record.get(key))
    except CheckError:
        raise UnreadableVerdict(f"{key} is not a number: {record.get(key)!r}") from None
