"""Unique ids without a system call per request: a random per-process prefix and a counter.

48 random bits per process keep ids from different processes, restarts and forked workers apart (they
also key ledger rows, whose inserts skip duplicates); the counter keeps ids within a process apart.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(6).hex()
    _counter = itertools.count(1)


_reseed()
os.register_at_fork(after_in_child=_reseed)  # a forked worker must not repeat its parent's ids


def new_id() -> str:
    return f"{_prefix}{next(_counter):010x}"
