"""The generator's settings and preset sizes, apart from generate.py so the CLI starts without numpy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

CHAIN_LENGTHS = (3, 10)  # inclusive bounds, transactions per fraud chain


@dataclass(frozen=True)
class Scale:
    cards: int
    transactions: int

    def cards_for(self, transactions: int) -> int:
        """Cards for ``transactions`` at this scale's transactions per card (at least 1, at most the scale's)."""
        return max(1, min(self.cards, round(transactions * self.cards / self.transactions)))


SCALES = {
    # "seed": the size of the AWS sample's data (10,000 cards, 540 transactions each over five months).
    # "demo": a tenth of it, same transactions per card: seconds to run, enough fraud to train on.
    "demo": Scale(cards=1_000, transactions=540_000),
    "seed": Scale(cards=10_000, transactions=5_400_000),
}


@dataclass(frozen=True)
class GeneratorConfig:
    cards: int = SCALES["demo"].cards
    transactions: int = SCALES["demo"].transactions
    fraud_ratio: float = 0.0025
    seed: int = 123
    start: datetime = datetime(2022, 1, 1, tzinfo=timezone.utc)
    end: datetime = datetime(2022, 6, 1, tzinfo=timezone.utc)

    def __post_init__(self) -> None:
        if self.cards < 1:
            raise ValueError(f"--cards must be at least 1, got {self.cards}")
        if self.transactions < 1:
            raise ValueError(f"--transactions must be at least 1, got {self.transactions}")
        if not 0 <= self.fraud_ratio < 1:
            raise ValueError(f"--fraud-ratio must be in [0, 1), got {self.fraud_ratio}")
        if self.end <= self.start:
            raise ValueError(f"--end ({self.end:%Y-%m-%d}) must be after --start ({self.start:%Y-%m-%d})")
        if self.cards > self.transactions:
            raise ValueError(f"--cards ({self.cards}) cannot exceed --transactions ({self.transactions})")
        if 0 < self.fraud_transactions < CHAIN_LENGTHS[0]:
            raise ValueError(f"--fraud-ratio {self.fraud_ratio:g} of {self.transactions:,} transactions is "
                             f"{self.fraud_transactions} fraudulent, too few for one chain of {CHAIN_LENGTHS[0]}: "
                             f"raise --transactions or --fraud-ratio, or pass --fraud-ratio 0")

    @property
    def fraud_transactions(self) -> int:
        return int(self.fraud_ratio * self.transactions)
