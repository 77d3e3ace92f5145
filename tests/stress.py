"""Load-shaped tests (marked `stress`) run a bounded sample in `make test` and their full size in
`make stress` (STRESS=1), which runs only them."""

from __future__ import annotations

import os

FULL_SIZE = os.environ.get("STRESS") == "1"


def scaled(sample: int, full: int) -> int:
    """How many (writers, posts, trials) a stress test uses in this run."""
    return full if FULL_SIZE else sample
