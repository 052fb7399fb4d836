"""Ids stay unique across forked workers (they key ledger rows, whose inserts skip duplicates)."""

from __future__ import annotations

import os

from keymux.ids import new_id


def test_ids_are_unique_in_a_process() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave without running pytest's teardown
        os.close(read)
        os.write(write, " ".join(new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode().split()
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(3)]
    assert len(child) == 3 and not set(child) & set(parent)
    assert child[0][:12] != parent[0][:12]
