"""The 2025-2026 429 causes, end to end: the emulator answers like Google, keymux parks what the cause
says (a project's spend window, its billing, a backoff), and /admin/keys, /metrics and /health say why."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest
from openai import RateLimitError
from prometheus_client.parser import text_string_to_metric_families

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from .conftest import Stack, StackFactory, gemini_group

MSG = [{"role": "user", "content": "hi"}]
AUTH = {"authorization": "Bearer sk-master"}


async def _get(stack: Stack, path: str, auth: bool = True) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.base}{path}", headers=AUTH if auth else {}) as resp:
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if path != "/metrics" else raw.decode()


async def _ask(stack: Stack, model: str = "chat") -> Any:
    return await stack.openai().chat.completions.create(model=model, messages=MSG)


def _models(keys_doc: dict[str, Any], fp: str) -> dict[str, dict[str, Any]]:
    key = next(k for k in keys_doc["data"] if k["key"] == fp)
    return {m["model"]: m for m in key["models"]}


def _causes(metrics: str) -> dict[tuple[str, str], float]:
    return {(s.labels["key"], s.labels["cause"]): s.value for fam in text_string_to_metric_families(metrics)
            for s in fam.samples if s.name == "keymux_upstream_429_causes_total"}


async def _two_model_stack(make_stack: StackFactory) -> Stack:
    doc = {"model_list": gemini_group("chat", ["paid"]) + gemini_group("pro", ["paid"], model="gemini-2.5-pro")
           + gemini_group("chat", ["spare"]),
           "router_settings": {"routing_strategy": "simple-shuffle", "queue_timeout": 0}}
    return await make_stack(doc, gemini_keys={"paid": EmuKey(), "spare": EmuKey()})


async def test_a_spend_cap_parks_every_model_of_the_project_for_the_window(make_stack: StackFactory) -> None:
    stack = await _two_model_stack(make_stack)
    stack.gemini.inject("paid", "spendcap")
    with pytest.raises(RateLimitError):  # pro has only this key
        await _ask(stack, "pro")
    for _ in range(4):  # chat is served by its other key: the project's flash model is out too
        assert (await _ask(stack)).choices[0].message.content
    assert stack.gemini.count(key="paid", status=200) == 0
    assert stack.gemini.count(kind="spendcap") == 1
    _, keys = await _get(stack, "/admin/keys")
    models = _models(keys, fingerprint("paid"))
    assert len(models) == 2 and {m["state"] for m in models.values()} == {"cooling"}  # chat's flash and pro's 2.5-pro alike
    assert all("spend cap" in m["why"] and "10-minute" in m["why"] for m in models.values())
    with pytest.raises(RateLimitError) as err:  # pro has only the capped key: refused with the window's wait
        await _ask(stack, "pro")
    assert 595 <= int(err.value.response.headers["retry-after"]) <= 601
    _, metrics = await _get(stack, "/metrics")
    assert _causes(metrics) == {(fingerprint("paid"), "spend_cap"): 1.0}
    stack.clock.advance(601)
    assert (await _ask(stack, "pro")).choices[0].message.content


async def test_depleted_prepayment_parks_the_project_and_says_it_is_billing(make_stack: StackFactory) -> None:
    stack = await _two_model_stack(make_stack)
    stack.gemini.inject("paid", "prepay")
    with pytest.raises(RateLimitError):  # pro has only this key
        await _ask(stack, "pro")
    for _ in range(4):  # chat is served by its other key: the project's flash model is out too
        assert (await _ask(stack)).choices[0].message.content
    assert stack.gemini.count(key="paid", status=200) == 0
    assert stack.gemini.count(kind="prepay") == 1
    _, keys = await _get(stack, "/admin/keys")
    models = _models(keys, fingerprint("paid"))
    assert len(models) == 2 and {m["state"] for m in models.values()} == {"exhausted"}
    assert all("prepayment credits depleted" in m["why"] and "billing" in m["why"] for m in models.values())
    with pytest.raises(RateLimitError) as err:
        await _ask(stack, "pro")
    assert 3590 <= int(err.value.response.headers["retry-after"]) <= 3601  # looked at again in an hour
    assert "prepayment credits depleted" in err.value.message
    _, metrics = await _get(stack, "/metrics")
    assert _causes(metrics) == {(fingerprint("paid"), "prepay_depleted"): 1.0}


@pytest.mark.parametrize("fault,cause,needle", [("tierdrop", "tier_drop", "usage tier was lowered"),
                                                ("bare429", "no_details", "429 without details")])
async def test_tier_drops_and_detail_less_429s_back_off_the_key_with_their_reason(
        make_stack: StackFactory, fault: str, cause: str, needle: str) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"]),
                              "router_settings": {"queue_timeout": 0}}, gemini_keys={"k1": EmuKey()})
    stack.gemini.inject("k1", fault)
    with pytest.raises(RateLimitError) as err:
        await _ask(stack)
    assert needle in err.value.message
    _, keys = await _get(stack, "/admin/keys")
    model = _models(keys, fingerprint("k1"))["gemini-2.5-flash"]
    assert model["state"] == "cooling" and needle in model["why"] and "backing off 5 s" in model["why"]
    _, metrics = await _get(stack, "/metrics")
    assert _causes(metrics) == {(fingerprint("k1"), cause): 1.0}
    stack.clock.advance(6)
    assert (await _ask(stack)).choices[0].message.content


async def test_when_every_key_429s_at_once_the_provider_backs_off_and_keys_stay_clean(
        make_stack: StackFactory) -> None:
    keys = ["k1", "k2", "k3", "k4"]
    stack = await make_stack({"model_list": gemini_group("chat", keys),
                              "router_settings": {"queue_timeout": 0, "num_retries": 3}},
                             gemini_keys={k: EmuKey() for k in keys})
    stack.gemini.inject(None, "bare429", "bare429", "bare429")  # the host's IP is throttled, not the keys
    with pytest.raises(RateLimitError) as err:
        await _ask(stack)
    assert "likely this host's IP (egress)" in err.value.message
    assert 4 <= int(err.value.response.headers["retry-after"]) <= 5
    assert stack.gemini.count(status=429) == 3  # the fourth key was not burnt
    _, doc = await _get(stack, "/admin/keys")
    assert {m["state"] for k in doc["data"] for m in k["models"]} == {"ready"}  # no key blamed
    assert doc["egress"]["gemini"]["level"] == 1
    _, health = await _get(stack, "/health")
    assert "gemini" in health["egress"] and health["egress"]["gemini"]["until_in"] == pytest.approx(5, abs=0.1)
    _, metrics = await _get(stack, "/metrics")
    backoff = [s for fam in text_string_to_metric_families(metrics) for s in fam.samples
               if s.name == "keymux_egress_backoff_seconds"]
    assert [(s.labels["provider"], s.value) for s in backoff] == [("gemini", pytest.approx(5, abs=0.1))]
    stack.clock.advance(5.1)
    assert (await _ask(stack)).choices[0].message.content
    _, health = await _get(stack, "/health")
    assert health["egress"] == {}


async def test_health_is_degraded_when_a_group_has_no_ready_key(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "k2"]) + gemini_group("other", ["k3"]),
                              "router_settings": {"queue_timeout": 0}},
                             gemini_keys={"k1": EmuKey(rpm=1), "k2": EmuKey(rpm=1), "k3": EmuKey()})
    _, health = await _get(stack, "/health")
    assert health["status"] == "healthy" and health["groups"]["chat"]["ready_of_total"] == "2/2"
    status, ready = await _get(stack, "/health/readiness", auth=False)
    assert (status, ready["status"]) == (200, "ready")
    await asyncio.gather(*[_ask(stack) for _ in range(2)])
    with pytest.raises(RateLimitError):  # both keys learned rpm 1 the hard way, or were simply used up
        for _ in range(3):
            await _ask(stack)
    _, health = await _get(stack, "/health")
    chat = health["groups"]["chat"]
    assert health["status"] == "degraded" and chat["ready_of_total"] == "0/2" and chat["total"] == 2
    assert 50 <= chat["next_free_in"] <= 61 and chat["next_free_at"].endswith("Z")
    assert health["groups"]["other"]["ready_of_total"] == "1/1"
    status, ready = await _get(stack, "/health/readiness", auth=False)
    assert status == 200 and ready["status"] == "degraded"  # not a 503: liveness and admission still work
    assert list(ready["no_ready_key"]) == ["chat"] and ready["no_ready_key"]["chat"]["total"] == 2
    status, live = await _get(stack, "/health/liveness", auth=False)
    assert (status, live["status"]) == (200, "alive")
