"""Value checks shared by every reader of outside input (messages, environment variables, log lines,
files), and the error a user can fix.

Pure Python, so the Lambda assets can ship it. Each check returns the value or raises CheckError whose
text completes a sentence that starts with the value's name ("amount is out of range [0, 1e+07]").
"""

from __future__ import annotations

import math
import re
from typing import Any

from fraudstream import contract as c

_CARD = re.compile(c.CARD_PATTERN)
_NUMBER = re.compile(c.NUMBER_PATTERN)


class InputError(Exception):
    """Bad input a user can fix: the CLI prints it as one line and exits non-zero."""


class CheckError(ValueError):
    """A value that fails a check; str() is the reason, without the value's name."""


def finite_number(value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float if it is a JSON number (not a bool), finite and in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckError("is missing or not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise CheckError(f"is out of range [{low:g}, {high:g}]") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise CheckError(f"is out of range [{low:g}, {high:g}]")
    return number


def number(value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    """Like finite_number, but a string holding a number (contract.NUMBER_PATTERN) is taken too."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)
    return finite_number(value, low, high)


def card_number(value: Any) -> int:
    """A card number: a JSON integer or a string of digits, in the contract's range."""
    if isinstance(value, str) and _CARD.fullmatch(value):
        value = int(value)
    elif isinstance(value, str) and value.isdigit():
        raise CheckError("is not a card number")  # too many digits
    if isinstance(value, float) and abs(value) > c.MAX_CARD_NUMBER:
        raise CheckError("is not a card number")  # a JSON integer past 64 bits, which orjson reads as a float
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckError("is missing or not a whole number")
    if not c.MIN_CARD_NUMBER <= value <= c.MAX_CARD_NUMBER:
        raise CheckError("is not a card number")
    return value
