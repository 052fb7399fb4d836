"""A key added at run time keeps every per-deployment field through a restart, and the fields take effect."""

from __future__ import annotations

import asyncio

import pytest
from openai import APIStatusError

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import MSG, OpsFactory, OpsStack, group

KEYS = {"k1": EmuKey(), "k3": EmuKey()}
SETTINGS = {"order": 1, "max_retries": 0, "stream_timeout": 0.2, "timeout": 30, "weight": 3, "project": "p-1",
            "tier": "paid", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "rpm": 50, "tpd": 10**6,
            "max_parallel_requests": 4, "id": "chat/added"}


def added(stack: OpsStack):  # type: ignore[no-untyped-def]
    return next(d.cfg for d in stack.gateway.pool.groups["chat"] if d.fingerprint == fingerprint("k3"))


async def fails_over(stack: OpsStack) -> bool:
    """k3 (order 1) answers 503: does the request go on to k1?"""
    stack.gemini.inject("k3", "503")
    before = stack.gemini.count(key="k1")
    try:
        await asyncio.wait_for(stack.ask(), 10)
    except APIStatusError as e:
        assert e.status_code == 503
    return stack.gemini.count(key="k1") > before


async def stream_gives_up_fast(stack: OpsStack) -> None:
    """k3 hangs on a stream: its stream_timeout (not its 30 s timeout) ends the attempt, and its max_retries 0
    ends the request there."""
    stack.gemini.inject("k3", "timeout")

    async def read() -> str:
        chunks = await stack.openai().chat.completions.create(model="chat", messages=MSG, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    with pytest.raises(APIStatusError) as err:
        await asyncio.wait_for(read(), 10)
    assert err.value.status_code == 504 and "1 attempt(s) failed" in err.value.message


async def test_a_run_time_key_keeps_every_field_after_a_restart(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("chat", ["k1"], order=2, rpd=100),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'rt.db'}"}}, KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", **SETTINGS})
    assert status == 201, body
    assert body["deployment"] == "chat/added"
    d = added(stack)
    assert (d.max_retries, d.stream_timeout, d.timeout, d.weight, d.order) == (0, 0.2, 30.0, 3.0, 1)
    assert (d.project, d.tier, d.input_cost_per_token, d.output_cost_per_token) == ("p-1", "paid", 1e-6, 2e-6)
    assert (d.limits.rpm, d.limits.rpd, d.limits.tpd, d.limits.max_parallel) == (50, 100, 10**6, 4)
    assert not await fails_over(stack)  # max_retries 0: no further attempt after k3 fails
    await stream_gives_up_fast(stack)

    await stack.server.close()
    again = await ops_stack(stack.doc, reuse=stack)
    assert added(again) == d
    assert not await fails_over(again)
    await stream_gives_up_fast(again)


async def test_without_max_retries_a_run_time_key_fails_over(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("chat", ["k1"], order=2),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'rt.db'}"}}, KEYS)
    status, _ = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", "order": 1})
    assert status == 201
    assert (added(stack).max_retries, added(stack).stream_timeout) == (None, None)
    assert await fails_over(stack)


@pytest.mark.parametrize(("field", "value"), [("max_retries", "none"), ("stream_timeout", 0), ("api_base", "x")])
async def test_a_bad_field_is_a_400_naming_it(ops_stack: OpsFactory, tmp_path, field: str, value: object) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("chat", ["k1"]),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'rt.db'}"}}, KEYS)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", field: value})
    assert status == 400 and body["error"]["param"] == field and body["error"]["type"] == "invalid_request_error"
    assert await stack.gateway.ledger.runtime_keys() == []


async def test_a_field_the_router_ignores_is_warned_about_in_the_log(ops_stack: OpsFactory, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("chat", ["k1"]), "router_settings": {"num_retries": 1},
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'rt.db'}"}}, KEYS)
    status, _ = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", "max_retries": 1})
    assert status == 201
    assert (f"key {fingerprint('k3')} added at run time: max_retries 1: accepted, no effect "
            "(it only lowers router_settings.num_retries, which is 1)") in caplog.text
