"""fraudstream generate: the seed's generative process, vectorised and deterministic."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudstream import contract as c
from fraudstream.offline.generate import (
    AMOUNT_BUCKETS,
    CHAIN_GAP_SECONDS,
    CHAIN_LENGTHS,
    GeneratorConfig,
    chain_lengths,
    generate,
    luhn_check_digit,
)


def _fraud_runs(table):
    """Fraudulent rows grouped per card into runs of transactions at most 120 s apart."""
    frame = table.to_pandas()
    fraud = frame[frame[c.FRAUD_LABEL] == 1].sort_values([c.CC_NUM, c.DATETIME])
    runs = []
    for _, card_rows in fraud.groupby(c.CC_NUM):
        times = card_rows[c.DATETIME].to_numpy().astype("datetime64[s]").astype("int64")
        breaks = np.flatnonzero(np.diff(times) > CHAIN_GAP_SECONDS[1]) + 1
        runs.extend(np.split(times, breaks))
    return runs


def test_amounts_fall_in_the_seed_buckets_with_the_seed_shares(small_transactions):
    amounts = small_transactions.column(c.AMOUNT).to_numpy()
    assert amounts.min() >= 0.01 and amounts.max() <= 10_000
    for share, low, high in AMOUNT_BUCKETS:
        observed = np.mean((amounts >= low) & (amounts < high))
        assert observed == pytest.approx(share, abs=0.005), (low, high)


def test_amounts_are_whole_cents(small_transactions):
    cents = small_transactions.column(c.AMOUNT).to_numpy() * 100
    assert np.allclose(cents, np.round(cents))


def test_fraud_share_is_the_requested_ratio(small_transactions, small_config):
    labels = small_transactions.column(c.FRAUD_LABEL).to_numpy()
    assert labels.sum() == int(small_config.fraud_ratio * small_config.transactions) == 250


def test_every_fraud_chain_is_on_one_card_with_3_to_10_transactions_30_to_120_s_apart():
    table = generate(GeneratorConfig(cards=500, transactions=400_000, seed=11))
    runs = _fraud_runs(table)
    lengths = [len(run) for run in runs]
    gaps = np.concatenate([np.diff(run) for run in runs])
    assert sum(lengths) == 1_000
    assert min(lengths) >= CHAIN_LENGTHS[0] and max(lengths) <= CHAIN_LENGTHS[1]
    assert gaps.min() >= CHAIN_GAP_SECONDS[0] and gaps.max() <= CHAIN_GAP_SECONDS[1]
    assert len(set(lengths)) == 8  # every length from 3 to 10 occurs


def test_card_numbers_are_unique_16_digit_luhn_valid_visa_numbers():
    table = generate(GeneratorConfig(cards=5_000, transactions=50_000, seed=3))
    cards = np.unique(table.column(c.CC_NUM).to_numpy())
    assert len(cards) == 5_000  # 10 transactions per card: every card appears
    assert all(len(str(card)) == 16 and str(card)[0] == "4" for card in cards)
    body, check = cards // 10, cards % 10
    assert (luhn_check_digit(body) == check).all()


def test_luhn_check_digit_of_a_known_test_card():
    assert luhn_check_digit(np.array([411111111111111]))[0] == 1  # 4111 1111 1111 1111


def test_the_same_seed_gives_identical_output_and_another_seed_does_not():
    config = GeneratorConfig(cards=100, transactions=20_000, seed=5)
    first, second = generate(config), generate(config)
    other = generate(GeneratorConfig(cards=100, transactions=20_000, seed=6))
    assert first.equals(second)
    assert not first.equals(other)


def test_output_has_the_contract_columns_sorted_by_time_with_unique_ids(small_transactions):
    assert tuple(small_transactions.column_names) == c.TRANSACTION_COLUMNS
    times = small_transactions.column(c.DATETIME).to_numpy()
    assert (np.diff(times.astype("int64")) >= 0).all()
    tids = small_transactions.column(c.TID).to_pylist()
    assert len(set(tids)) == len(tids)


def test_timestamps_cover_the_period(small_transactions, small_config):
    seconds = small_transactions.column(c.DATETIME).to_numpy().astype("int64") // 10**6
    assert seconds.min() >= small_config.start.timestamp()
    # Chains that start at the very end may run a few minutes past it.
    assert seconds.max() < small_config.end.timestamp() + 10 * CHAIN_GAP_SECONDS[1]
    assert seconds.max() > small_config.end.timestamp() - 86_400


@given(st.integers(min_value=3, max_value=100_000))
def test_chain_lengths_add_up_to_the_fraud_count_within_bounds(total):
    lengths = chain_lengths(np.random.default_rng(total), total)
    assert lengths.sum() == total
    assert lengths.min() >= CHAIN_LENGTHS[0] and lengths.max() <= CHAIN_LENGTHS[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cards": 0}, "--cards"),
        ({"transactions": -5}, "--transactions"),
        ({"fraud_ratio": 1.5}, "--fraud-ratio"),
        ({"fraud_ratio": -0.1}, "--fraud-ratio"),
        ({"cards": 10, "transactions": 5}, "cannot exceed"),
        ({"end": datetime(2021, 1, 1, tzinfo=timezone.utc)}, "--end"),
    ],
)
def test_nonsense_parameters_are_refused_with_a_message_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**kwargs)


def test_fewer_fraudulent_transactions_than_a_chain_is_refused():
    with pytest.raises(ValueError, match="chain"):
        generate(GeneratorConfig(cards=10, transactions=1_000, fraud_ratio=0.002))
