"""Reload (POST /admin/reload, SIGHUP, --watch): unchanged keys keep state and counters; a broken config is refused."""

from __future__ import annotations

import asyncio
import os

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import OpsFactory, group

KEYS = {"k1": EmuKey(), "k2": EmuKey(), "k3": EmuKey()}
FP = {k: fingerprint(k) for k in KEYS}


def doc(tmp_path, keys=("k1", "k2"), rpm=2):  # type: ignore[no-untyped-def]
    return {"model_list": group("chat", list(keys), rpm=rpm),
            "router_settings": {"queue_timeout": 0},
            "general_settings": {"database_url": f"sqlite:///{tmp_path / 'r.db'}"}}


async def test_reload_keeps_state_and_counters_of_unchanged_keys(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    gw = stack.gateway
    for _ in range(3):
        await stack.ask()
    before = {d.fingerprint: d for d in gw.pool.groups["chat"]}
    served = {fp: d.served for fp, d in before.items()}
    used = {fp: gw.pool.store.view(d, stack.clock.time()).rpm_used for fp, d in before.items()}
    await stack.admin("POST", f"/admin/keys/{FP['k2']}/disable")

    stack.write(doc(tmp_path, keys=("k1", "k2", "k3")))
    status, body = await stack.admin("POST", "/admin/reload")
    assert status == 200, body
    assert body["changes"]["added"] == ["chat/2"] and body["changes"]["removed"] == []
    after = {d.fingerprint: d for d in gw.pool.groups["chat"]}
    assert set(after) == {FP["k1"], FP["k2"], FP["k3"]}
    assert after[FP["k1"]] is before[FP["k1"]] and after[FP["k2"]] is before[FP["k2"]]
    now = stack.clock.time()
    assert {fp: after[fp].served for fp in served} == served
    assert {fp: gw.pool.store.view(after[fp], now).rpm_used for fp in used} == used
    assert gw.pool.store.view(after[FP["k2"]], now).state.value == "disabled"
    # Changed limits: new deployment objects, same store state (windows are kept by scope).
    stack.write(doc(tmp_path, keys=("k1", "k2", "k3"), rpm=5))
    status, body = await stack.admin("POST", "/admin/reload")
    assert status == 200 and sorted(body["changes"]["changed"]) == ["chat/0", "chat/1", "chat/2"]
    k1 = next(d for d in gw.pool.groups["chat"] if d.fingerprint == FP["k1"])
    assert k1 is not before[FP["k1"]] and k1.limits.rpm == 5 and k1.served == served[FP["k1"]]
    assert gw.pool.store.view(k1, now).rpm_used == used[FP["k1"]]
    assert gw.live.snapshot.resolve("gemini-2.5-flash") == "gemini-2.5-flash"  # model-id aliases rebuilt too
    assert len(await gw.ledger.recent(10, 1e18)) == 3


async def test_a_broken_config_is_rejected_and_the_old_one_stays(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    gw = stack.gateway
    groups = gw.pool.groups
    stack.path.write_text("model_list:\n  - model_name: chat\n    litellm_params: {model: gemini/x, api_key: k1\n")
    status, body = await stack.admin("POST", "/admin/reload")
    assert status == 422
    assert "config rejected, the previous config stays in force" in body["error"]["message"]
    assert "line" in body["error"]["message"]
    stack.path.write_text("model_list:\n  - model_name: chat\n    litellm_params: {model: gemini/x, rpm: many}\n")
    status, body = await stack.admin("POST", "/admin/reload")
    assert status == 422 and "rpm" in body["error"]["message"]
    assert gw.pool.groups is groups
    assert (await stack.ask()).choices[0].message.content


async def test_watch_reloads_when_the_file_changes(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    gw = stack.gateway
    gw.changes.watch(interval=0.01)
    stack.write(doc(tmp_path, keys=("k1", "k2", "k3")))
    st = os.stat(stack.path)
    os.utime(stack.path, (st.st_atime, st.st_mtime + 5))
    for _ in range(200):
        await asyncio.sleep(0.005)
        if len(gw.pool.groups["chat"]) == 3:
            break
    assert len(gw.pool.groups["chat"]) == 3 and gw.changes.last_reload["ok"]
    await gw.changes.stop()
