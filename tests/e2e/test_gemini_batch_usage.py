"""A batch created through keymux lands in the ledger twice: at creation (no tokens yet), and once more
when keymux learns it has ended (a client's poll, or keymux's own watcher), with the batch's token counts
priced at the Batch tier (half the interactive price). Never twice for one batch."""

from __future__ import annotations

from typing import Any

import pytest

from keymux.emulator import EmuKey
from keymux.emulator.gemini_caches_batches import BATCH_STARTS, BATCH_TAKES
from keymux.fingerprint import fingerprint

from .conftest import Stack, StackFactory

KEYS = ["ka-1111111111", "kb-2222222222"]
SRC: list[Any] = [{"contents": [{"parts": [{"text": "first question, a little longer"}], "role": "user"}]},
                  {"contents": [{"parts": [{"text": "second question"}], "role": "user"}]}]


async def _stack(make_stack: StackFactory) -> Stack:
    models = [{"model_name": "flash", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": k},
               "model_info": {"tier": "paid"}} for k in KEYS]
    return await make_stack({"model_list": models}, gemini_keys={k: EmuKey() for k in KEYS})


async def _rows(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    await stack.gateway.ledger.flush()
    page = await stack.admin_json("/admin/requests?limit=100")
    out: dict[str, list[dict[str, Any]]] = {}
    for row in page["data"]:
        out.setdefault(row["operation"], []).append(row)
    return out


def _expected(stack: Stack, name: str) -> tuple[int, int]:
    """The emulator's own token counts for the batch: (prompt, completion)."""
    responses = stack.gemini.stateful.batches[name][1]["responses"]
    prompt = sum(r["response"]["usageMetadata"]["promptTokenCount"] for r in responses)
    completion = sum(r["response"]["usageMetadata"]["candidatesTokenCount"] for r in responses)
    return prompt, completion


async def test_a_polled_batch_writes_its_usage_once_at_half_price(make_stack: StackFactory) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    job = await client.aio.batches.create(model="flash", src=SRC)
    rows = await _rows(stack)
    assert [r["total_tokens"] for r in rows["batchGenerateContent"]] == [0]
    assert "batches.usage" not in rows
    assert (await stack.admin_json("/admin/pins"))["batches_running"] == 1
    stack.clock.advance(BATCH_STARTS + 1)
    assert (await client.aio.batches.get(name=job.name)).state.name == "JOB_STATE_RUNNING"
    assert "batches.usage" not in await _rows(stack)
    stack.clock.advance(BATCH_TAKES)
    for _ in range(3):  # every poll after the end sees it done; one row only
        assert (await client.aio.batches.get(name=job.name)).state.name == "JOB_STATE_SUCCEEDED"
    rows = await _rows(stack)
    [row] = rows["batches.usage"]
    prompt, completion = _expected(stack, job.name)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["key"] == rows["batchGenerateContent"][0]["key"]
    assert row["group"] == "flash" and row["status"] == 200
    interactive = (prompt * 0.30 + completion * 2.50) / 1e6  # gemini-2.5-flash list price per token
    assert row["cost"] == pytest.approx(interactive / 2)
    usage = await stack.admin_json("/admin/usage?by=operation&since=1h")
    by_op = {r["operation"]: r for r in usage["data"]}
    assert by_op["batches.usage"]["total_tokens"] == prompt + completion
    assert by_op["batches.usage"]["cost"] == pytest.approx(interactive / 2)
    assert (await stack.admin_json("/admin/pins"))["batches_running"] == 0


async def test_the_watcher_records_a_batch_nobody_polls(make_stack: StackFactory) -> None:
    stack = await _stack(make_stack)
    job = await stack.genai().aio.batches.create(model="flash", src=SRC)
    watcher = stack.gateway.batches
    stack.clock.advance(watcher.interval)  # a round while it still runs: asked, nothing written
    assert watcher.polling is not None and await watcher.polling == 1
    assert "batches.usage" not in await _rows(stack)
    owner = next(k for k in KEYS if job.name in stack.gemini.stateful.batches_of(k))
    assert stack.gemini.count(owner, endpoint="batches.get") == 1
    stack.clock.advance(watcher.interval)  # ended by now
    assert await watcher.polling == 1
    [row] = (await _rows(stack))["batches.usage"]
    assert row["total_tokens"] == sum(_expected(stack, job.name))
    stack.clock.advance(watcher.interval)  # nothing left to watch
    assert await watcher.polling == 0
    assert stack.gemini.count(owner, endpoint="batches.get") == 2
    assert stack.gemini.count(status=404) == 0


async def test_a_cancelled_batch_ends_without_tokens(make_stack: StackFactory) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    job = await client.aio.batches.create(model="flash", src=SRC)
    await client.aio.batches.cancel(name=job.name)
    got = await client.aio.batches.get(name=job.name)
    assert got.state.name == "JOB_STATE_CANCELLED"
    [row] = (await _rows(stack))["batches.usage"]
    assert row["total_tokens"] == 0 and row["cost"] == 0
    assert "BATCH_STATE_CANCELLED" in row["detail"]
    stack.clock.advance(BATCH_TAKES)
    assert (await client.aio.batches.get(name=job.name)).state.name == "JOB_STATE_CANCELLED"
    assert len((await _rows(stack))["batches.usage"]) == 1


async def test_a_batch_created_elsewhere_is_not_recorded(make_stack: StackFactory) -> None:
    """Only batches keymux created are its to record: one listed (and so pinned) from a key is not."""
    stack = await _stack(make_stack)
    stack.gemini.stateful.create_batch(KEYS[0], KEYS[0], "gemini-2.5-flash", {"batch": {"inputConfig": {
        "requests": {"requests": [{"request": SRC[0]}]}}}})
    client = stack.genai()
    [listed] = [b async for b in await client.aio.batches.list()]
    stack.clock.advance(BATCH_TAKES + 1)
    assert (await client.aio.batches.get(name=listed.name)).state.name == "JOB_STATE_SUCCEEDED"
    assert "batches.usage" not in await _rows(stack)


async def test_the_watcher_waits_out_a_disabled_key(make_stack: StackFactory) -> None:
    """The batch's key is disabled when the batch ends: nothing can ask it, so nothing is written, and the
    batch stays watched; once the key is back, the next round records it."""
    stack = await _stack(make_stack)
    job = await stack.genai().aio.batches.create(model="flash", src=SRC)
    owner = next(k for k in KEYS if job.name in stack.gemini.stateful.batches_of(k))
    gw = stack.gateway
    await gw.pool.disable_key(fingerprint(owner), "operator")
    stack.clock.advance(BATCH_TAKES)
    assert await gw.batches.polling == 1
    assert "batches.usage" not in await _rows(stack)
    assert (await stack.admin_json("/admin/pins"))["batches_running"] == 1
    await gw.pool.enable_key(fingerprint(owner))
    stack.clock.advance(gw.batches.interval)
    assert await gw.batches.polling == 1
    [row] = (await _rows(stack))["batches.usage"]
    assert row["key"] == fingerprint(owner) and row["total_tokens"] == sum(_expected(stack, job.name))
