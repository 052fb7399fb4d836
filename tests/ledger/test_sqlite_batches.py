"""SQLite writes rows in multi-row statements: every row of a large batch arrives intact, and the
attempts table gets the failed attempts (what per-key error counts read)."""

from __future__ import annotations

from pathlib import Path

from keymux.ledger import Ledger, Row
from keymux.ledger.sqlite import SQLiteStore

T0 = 1_795_716_000.0


def _row(i: int, attempts: tuple[tuple[str, str], ...]) -> Row:
    ok = attempts[-1][1] == "ok"
    return Row(id=f"r{i}", at=T0 + i / 1000, request_id=f"q{i}", surface="openai", client="master", group="chat",
               key=attempts[-1][0] if ok else None, upstream_model="gemini-2.5-flash", status=200 if ok else 429,
               outcome="ok" if ok else "refused", attempts=attempts, prompt_tokens=i, completion_tokens=1,
               reasoning_tokens=0, total_tokens=i + 1, cost=0.0, value=0.001, free_tier=True, latency=0.01,
               ttfb=0.01, stream=False, detail="" if ok else "every key rate limited", queue_wait=0.0)


async def test_a_large_batch_arrives_whole_and_failed_attempts_are_counted_per_key(tmp_path: Path) -> None:
    ledger = Ledger(SQLiteStore(str(tmp_path / "ledger.db")))
    await ledger.start()
    try:
        n = 457  # more than two statements' worth of rows, and a remainder
        for i in range(n):
            if i % 50 == 0:  # one key rate limited, then another answered
                ledger.append(_row(i, (("gem:aaaa", "rate_limited"), ("gem:bbbb", "ok"))))
            else:
                ledger.append(_row(i, (("gem:bbbb", "ok"),)))
        await ledger.flush()
        assert ledger.written == n and not ledger.buffer
        recent = await ledger.recent(limit=n + 10, before=T0 + 3600)
        assert len(recent) == n and {r["id"] for r in recent} == {f"r{i}" for i in range(n)}
        first = next(r for r in recent if r["id"] == "r0")
        assert first["attempts"] == [["gem:aaaa", "rate_limited"], ["gem:bbbb", "ok"]]
        assert first["prompt_tokens"] == 0 and next(r for r in recent if r["id"] == "r456")["prompt_tokens"] == 456
        totals = await ledger.key_totals(T0)
        assert totals["gem:bbbb"]["requests"] == n and totals["gem:bbbb"]["errors"] == 0
        assert totals["gem:aaaa"] == {"requests": 0, "errors": 10, "tokens": 0, "cost": 0.0, "value": 0.0}
        usage = await ledger.usage(None, T0, T0 + 3600, None, frozenset({"outcomes"}))
        assert usage[0]["requests"] == n and usage[0]["outcomes"]["rate_limited"] == 10
    finally:
        await ledger.close()
