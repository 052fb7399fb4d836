"""Every upstream fault class (emulator/faults.py) x both client APIs x both upstreams x stream or not: the
status the client gets, that no key reaches it, and that the ledger row and the access log line say what
happened. The emulator answers every attempt with the fault, so retries cannot hide it."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson
import pytest

from .conftest import MASTER, SECRETS, FaultStack, assert_no_secret

FAILING = ("key5xx", "key_midstream", "cut200", "empty200", "empty_stream", "hang", "reset")
ROUTES = [("openai", "chat"), ("openai", "gpt"), ("gemini", "chat"), ("gemini", "gpt")]  # (client API, group)


async def send(stack: FaultStack, api: str, group: str, stream: bool, rid: str) -> tuple[int, bytes]:
    if api == "openai":
        url = f"{stack.base}/v1/chat/completions"
        body: dict[str, Any] = {"model": group, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        headers = {"authorization": f"Bearer {MASTER}"}
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{stack.base}/v1beta/models/{group}:{method}"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        headers = {"x-goog-api-key": MASTER}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers={**headers, "x-request-id": rid}) as r:
            try:
                return r.status, await r.read()
            except aiohttp.ClientPayloadError:  # keymux cut the stream: what arrived is what the client saw
                return r.status, b""


def stream_error(body: bytes) -> bool:
    """An error event in an SSE stream (OpenAI or Gemini shape)."""
    for line in body.split(b"\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]" and b'"error"' in line:
            return "error" in orjson.loads(line[6:])
    return False


async def ledger_row(stack: FaultStack, rid: str) -> dict[str, Any]:
    rows = await stack.gateway.ledger.recent(50, 1e18)
    found = [r for r in rows if r["request_id"] == rid]
    assert len(found) == 1, f"expected one ledger row for {rid}, got {len(found)}"
    return found[0]


def access_line(caplog: pytest.LogCaptureFixture, rid: str) -> str:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(rid + " ")]
    assert len(lines) == 1, f"expected one access line for {rid}: {lines}"
    return lines[0]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("api", "group"), ROUTES, ids=[f"{a}-{g}" for a, g in ROUTES])
@pytest.mark.parametrize("mode", FAILING)
async def test_an_upstream_fault_reaches_the_client_as_a_failure(
        fault_stack: FaultStack, caplog: pytest.LogCaptureFixture, mode: str, api: str, group: str,
        stream: bool) -> None:
    caplog.set_level(logging.INFO, logger="keymux")
    fault_stack.faults(mode)
    rid = f"fm-{mode}-{api}-{group}-{int(stream)}"
    status, body = await send(fault_stack, api, group, stream, rid)
    assert_no_secret(body)
    if status == 200:
        assert stream, f"a non-streaming {mode} fault was answered 200: {body[:200]!r}"
        assert stream_error(body), f"a {mode} stream ended as if it had succeeded: {body[:300]!r}"
    else:
        assert status in (500, 502, 503, 504), (status, body[:200])
        err = orjson.loads(body)["error"]
        assert err["message"] and (isinstance(err.get("status"), str) if api == "gemini" else err.get("type"))
    row = await ledger_row(fault_stack, rid)
    assert row["outcome"] != "ok", row
    assert row["status"] == status, row
    assert all(s not in orjson.dumps(row).decode() for s in SECRETS)
    line = access_line(caplog, rid)
    assert f"status={status}" in line and all(s not in line for s in SECRETS)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("api", "group"), ROUTES, ids=[f"{a}-{g}" for a, g in ROUTES])
async def test_a_huge_but_well_formed_answer_is_delivered_and_recorded(
        fault_stack: FaultStack, caplog: pytest.LogCaptureFixture, api: str, group: str, stream: bool) -> None:
    caplog.set_level(logging.INFO, logger="keymux")
    fault_stack.gemini.wire.huge_bytes = fault_stack.openai_emu.wire.huge_bytes = 1_000_000
    fault_stack.faults("huge")
    rid = f"fm-huge-{api}-{group}-{int(stream)}"
    status, body = await send(fault_stack, api, group, stream, rid)
    assert status == 200 and not stream_error(body)
    assert body.count(b"x") >= 900_000
    assert_no_secret(body)
    row = await ledger_row(fault_stack, rid)
    assert (row["status"], row["outcome"]) == (200, "ok")
    assert "status=200" in access_line(caplog, rid)
