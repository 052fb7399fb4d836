"""Unique ids without a system call per request: a random per-process prefix and a counter.

48 random bits per process keep ids from different processes and restarts apart (they also key
ledger rows); the counter keeps ids within a process apart.
"""

from __future__ import annotations

import itertools
import os

_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):010x}"
