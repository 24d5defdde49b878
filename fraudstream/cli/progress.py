"""Progress of long commands, on stderr (stdout is for results)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints each step of a long command to stderr with the time since the command started."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)
