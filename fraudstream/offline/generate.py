"""Synthetic card transactions with fraud chain attacks, vectorised.

Same generative process as the AWS sample's data notebook (docs/batch-pipeline.md: "fraudstream generate"): unique 16-digit Visa-like
card numbers, timestamps uniform over 2022-01-01..2022-06-01, amounts in five buckets with
fixed shares, and 0.25% of transactions fraudulent, in chains of 3-10 transactions on one card
30-120 s apart. As in the seed, a chain starts at a random transaction and takes over the
transactions that follow it in time, re-timing them and moving them onto the chain's card.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from fraudstream import contract as c
from fraudstream.offline.generate_config import CHAIN_LENGTHS, GeneratorConfig

# (share, low, high): the AWS sample's amount distribution.
AMOUNT_BUCKETS = (
    (0.05, 0.01, 1.0),
    (0.075, 1.0, 10.0),
    (0.525, 10.0, 100.0),
    (0.25, 100.0, 1000.0),
    (0.10, 1000.0, 10000.0),
)
CHAIN_GAP_SECONDS = (30, 120)  # inclusive bounds between consecutive chain transactions


def card_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unique 16-digit numbers starting with 4 and ending with a valid Luhn check digit."""
    body = 4 * 10**14 + rng.choice(10**14, size=n, replace=False).astype(np.int64)
    return body * 10 + luhn_check_digit(body)


def luhn_check_digit(body: np.ndarray) -> np.ndarray:
    """The digit that makes ``body`` followed by it pass the Luhn check."""
    total = np.zeros(body.shape, dtype=np.int64)
    rest = body.copy()
    double = True  # the rightmost digit of the body is doubled once the check digit is appended
    while rest.any():
        digit = rest % 10
        if double:
            digit = digit * 2
            digit = np.where(digit > 9, digit - 9, digit)
        total += digit
        rest //= 10
        double = not double
    return (10 - total % 10) % 10


def amounts_in_buckets(rng: np.random.Generator, buckets: np.ndarray) -> np.ndarray:
    """One amount in cents-rounded dollars per entry of ``buckets`` (indexes into AMOUNT_BUCKETS)."""
    low = np.array([b[1] for b in AMOUNT_BUCKETS])[buckets]
    high = np.array([b[2] for b in AMOUNT_BUCKETS])[buckets]
    return np.round(rng.uniform(low, high), 2)


def bucket_counts(n: int) -> np.ndarray:
    """How many of ``n`` amounts fall in each bucket: exact shares, remainder to the largest."""
    counts = np.array([int(n * share) for share, _, _ in AMOUNT_BUCKETS])
    counts[int(np.argmax([b[0] for b in AMOUNT_BUCKETS]))] += n - counts.sum()
    return counts


def fraud_amount_buckets(n: int) -> np.ndarray:
    """The seed's buckets for ``n`` injected amounts: ceil(n * share) of each, in order, first n."""
    return np.repeat(np.arange(len(AMOUNT_BUCKETS)), [math.ceil(n * b[0]) for b in AMOUNT_BUCKETS])[:n]


def chain_lengths(rng: np.random.Generator, total: int) -> np.ndarray:
    """Chain lengths in [3, 10] that add up to exactly ``total`` fraudulent transactions."""
    low, high = CHAIN_LENGTHS
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    if total < low:
        raise ValueError(f"{total} fraudulent transactions cannot form a chain of at least {low}")
    lengths = rng.integers(low, high + 1, size=total // low + 1)
    lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), total, side="right"))]
    remainder = total - int(lengths.sum())
    if remainder >= low:
        lengths = np.append(lengths, remainder)
    elif remainder:
        # Too short for a chain of its own: lengthen chains that still have room.
        room = np.flatnonzero(lengths < high)
        if len(room) < remainder:
            raise ValueError(f"cannot split {total} fraudulent transactions into chains of {low}-{high}")
        lengths[room[:remainder]] += 1
    return lengths


def place_chains(rng: np.random.Generator, n: int, lengths: np.ndarray) -> np.ndarray:
    """Start positions of non-overlapping blocks of ``lengths`` rows among ``n`` rows, uniformly."""
    k, total = len(lengths), int(lengths.sum())
    if total > n:
        raise ValueError(f"{total} fraudulent transactions do not fit in {n} transactions")
    slots = np.sort(rng.choice(n - total + k, size=k, replace=False))
    return slots + np.concatenate(([0], np.cumsum(lengths[:-1] - 1))).astype(np.int64)


def generate(config: GeneratorConfig, progress=None) -> pa.Table:
    """The transactions table (tid, datetime, cc_num, amount, fraud_label), sorted by time."""
    step = progress or (lambda _msg: None)
    rng = np.random.default_rng(config.seed)
    n = config.transactions

    step(f"drawing {config.cards:,} card numbers and {n:,} timestamps")
    cards = card_numbers(rng, config.cards)
    start, end = int(config.start.timestamp()), int(config.end.timestamp())
    ts = np.sort(rng.integers(start, end, size=n, dtype=np.int64))
    card = rng.integers(0, config.cards, size=n)  # index into cards

    step("drawing amounts")
    amount = amounts_in_buckets(rng, rng.permutation(np.repeat(np.arange(len(AMOUNT_BUCKETS)), bucket_counts(n))))

    step(f"injecting {config.fraud_transactions:,} fraudulent transactions in chains")
    label = np.zeros(n, dtype=np.int8)
    lengths = chain_lengths(rng, config.fraud_transactions)
    low_gap, high_gap = CHAIN_GAP_SECONDS
    for first, length in zip(place_chains(rng, n, lengths), lengths):
        members = slice(first + 1, first + length)
        label[first : first + length] = 1
        card[members] = card[first]
        ts[members] = ts[first] + np.cumsum(rng.integers(low_gap, high_gap + 1, size=length - 1))
        amount[members] = amounts_in_buckets(rng, rng.permutation(fraud_amount_buckets(length - 1)))

    step("sorting and assigning transaction ids")
    # Chains moved a few rows out of time order: a stable sort of nearly sorted keys is linear.
    order = np.argsort((ts - start) * config.cards + card, kind="stable")
    return pa.table(
        {
            c.TID: transaction_ids(config.seed, n),
            c.DATETIME: pa.array(ts[order] * 1_000_000, type=pa.timestamp("us")),
            c.CC_NUM: cards[card[order]],
            c.AMOUNT: amount[order],
            c.FRAUD_LABEL: label[order],
        }
    )


def transaction_ids(seed: int, n: int) -> pa.Array:
    """Unique, deterministic 16-hex-digit ids: a bijective scramble (splitmix64) of the row number."""
    x = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x += np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    nibbles = np.frombuffer(x.astype(">u8").tobytes(), dtype=np.uint8).reshape(n, 8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 16), dtype=np.uint8)
    chars[:, 0::2] = digits[nibbles >> 4]
    chars[:, 1::2] = digits[nibbles & 0x0F]
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
