"""/metrics, parsed with prometheus_client's own parser, agrees with the ledger."""

from __future__ import annotations

import asyncio

import pytest
from openai import APIStatusError
from prometheus_client import parser  # noqa: E402  (test extra)

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import MASTER, OpsFactory, group

KEYS = {"AIzaSyMetricsKeyNumberOne": EmuKey(), "AIzaSyMetricsKeyTheSecond": EmuKey(),
        "AIzaSyMetricsInvalidKey": EmuKey(status="invalid"), "AIzaSyMetricsSlowKey": EmuKey(rpm=1)}
ONE, TWO, BAD, SLOW = KEYS
FP = {k: fingerprint(k) for k in KEYS}


def families(text: str) -> dict:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def samples(fams: dict, family: str, suffix: str = "") -> list:
    return [s for s in fams[family].samples if s.name == family + suffix]


async def test_metrics_agree_with_the_ledger(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({
        "model_list": group("chat", [BAD], order=1) + group("chat", [ONE], order=2) + group("slow", [SLOW], rpm=1),
        "router_settings": {"queue_timeout": 120, "num_retries": 1, "routing_strategy": "simple-shuffle"},
        "general_settings": {"database_url": f"sqlite:///{tmp_path / 'm.db'}"}}, KEYS)
    for _ in range(3):
        await stack.ask()
    stream = await stack.openai().chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                                          stream=True, stream_options={"include_usage": True})
    async for _ in stream:
        pass
    await stack.ask("slow")
    queued = asyncio.create_task(stack.ask("slow"))
    for _ in range(400):  # until the request has reached the pool's queue (real I/O, not quota time)
        if stack.gateway.pool.queue_depth() == 1:
            break
        await asyncio.sleep(0.005)
    status, text = await stack.admin("GET", "/metrics", raw=True)
    assert status == 200
    fams = families(text.decode())
    assert samples(fams, "keymux_queue_depth")[0].value == 1
    stack.clock.advance(60.5)
    await asyncio.wait_for(queued, 5)
    with pytest.raises(APIStatusError):
        await stack.openai().chat.completions.create(model="nope", messages=[])

    status, text = await stack.admin("GET", "/metrics", raw=True)
    fams = families(text.decode())
    rows = await stack.gateway.ledger.recent(100, 1e18)
    assert len(rows) == 6

    requests = samples(fams, "keymux_requests", "_total")
    assert sum(s.value for s in requests) == len(rows)
    ok = sum(s.value for s in requests if s.labels["outcome"] == "ok")
    assert ok == sum(1 for r in rows if r["outcome"] == "ok") == 6
    assert {s.labels["group"] for s in requests} == {"chat", "slow"}

    calls = {(s.labels["key"], s.labels["model"], s.labels["outcome"]): s.value
             for s in samples(fams, "keymux_upstream_calls", "_total")}
    ledger_calls: dict[tuple[str, str], int] = {}
    for r in rows:
        for fp, outcome in r["attempts"]:
            ledger_calls[(fp, outcome)] = ledger_calls.get((fp, outcome), 0) + 1
    assert {(k, o): v for (k, _, o), v in calls.items()} == ledger_calls
    assert calls.get((FP[BAD], "gemini-2.5-flash", "invalid_key")) == 1  # then disabled: tried once

    tokens = samples(fams, "keymux_tokens", "_total")
    for kind in ("prompt", "completion"):
        assert sum(s.value for s in tokens if s.labels["type"] == kind) == sum(r[f"{kind}_tokens"] for r in rows)
    value = sum(s.value for s in samples(fams, "keymux_value_usd", "_total"))
    assert value == pytest.approx(sum(r["value"] for r in rows))
    assert sum(s.value for s in samples(fams, "keymux_cost_usd", "_total")) == 0  # free tier

    states = {(s.labels["key"], s.labels["state"]): s.value for s in samples(fams, "keymux_key_state")}
    assert states[(FP[BAD], "disabled")] == 1 and states[(FP[BAD], "ready")] == 0
    assert states[(FP[ONE], "ready")] == 1

    wait = {s.name: s.value for s in fams["keymux_queue_wait_seconds"].samples}
    assert wait["keymux_queue_wait_seconds_count"] == 1
    assert wait["keymux_queue_wait_seconds_sum"] == pytest.approx(60.5, abs=1)
    duration = fams["keymux_request_duration_seconds"].samples
    assert sum(s.value for s in duration if s.name.endswith("_count")) == len(rows)
    ttfb = fams["keymux_time_to_first_byte_seconds"].samples
    assert sum(s.value for s in ttfb if s.name.endswith("_count")) == 6
    pending = samples(fams, "keymux_ledger_buffer_rows")[0].value
    assert pending + samples(fams, "keymux_ledger_written_rows", "_total")[0].value == len(rows)
    assert samples(fams, "keymux_ledger_dropped_rows", "_total")[0].value == 0
    for secret in (*KEYS, MASTER):
        assert secret.encode() not in text


async def test_metrics_need_the_master_key_unless_opened(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("chat", [ONE])}, KEYS)
    status, body = await stack.admin("GET", "/metrics", key=None)
    assert status == 401 and "metrics_auth" in body["error"]["message"]
    open_stack = await ops_stack({"model_list": group("chat", [ONE]),
                                  "general_settings": {"metrics_auth": False,
                                                       "database_url": f"sqlite:///{tmp_path / 'o.db'}"}}, KEYS)
    status, text = await open_stack.admin("GET", "/metrics", key=None, raw=True)
    assert status == 200 and b"keymux_requests_total" in text
