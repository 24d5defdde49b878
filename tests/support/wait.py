"""The one way a test waits: for a condition, polled, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 120.0, interval: float = 0.05,
             message: str = "the condition did not hold") -> T:
    """``condition()``'s first truthy value, polled every ``interval`` seconds; AssertionError with ``message``
    once ``timeout`` seconds pass without one."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        time.sleep(interval)
