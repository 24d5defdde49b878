"""Value checks shared by every reader of outside input (messages, environment variables, log lines,
files), and the error a user can fix.

Pure Python, so the Lambda assets can ship it. Each check returns the value or raises CheckError whose
text completes a sentence that starts with the value's name ("amount is out of range [0, 1e+07]").
"""

from __future__ import annotations

import math
from typing import Any


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
