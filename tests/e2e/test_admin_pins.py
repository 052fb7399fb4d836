"""GET /admin/pins: what is pinned to each key (interactions, files, caches, batches) and which requests
waited for their pinned key, by fingerprint only."""

from __future__ import annotations

import aiohttp

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..pinned import WAIT, pin_some, wait_for_pinned
from .conftest import StackFactory, gemini_group

KEYS = ["ka-1111111111", "kb-2222222222"]


async def test_pins_per_key_and_the_requests_that_waited(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", KEYS), "router_settings": {"queue_timeout": 120}},
                             gemini_keys={k: EmuKey() for k in KEYS})
    empty = await stack.admin_json("/admin/pins")
    assert [k["total"] for k in empty["data"]] == [0, 0] and empty["recent_waits"] == []
    owner, _ = await wait_for_pinned(stack.base, "sk-master", "flash", stack)
    await pin_some(stack.base, "sk-master", "flash")
    doc = await stack.admin_json("/admin/pins")
    assert doc["kinds"] == ["interactions", "files", "cachedContents", "batches"]
    by_key = {k["key"]: k for k in doc["data"]}
    assert set(by_key) == {fingerprint(k) for k in KEYS}
    emu = stack.gemini
    for k in KEYS:  # what keymux counts per key is what the key's project holds
        held = by_key[fingerprint(k)]["pinned"]
        assert held == {"interactions": len(emu.interactions.owned_by(k)), "files": len(emu.files_api.owned_by(k)),
                        "cachedContents": len(emu.stateful.caches_of(k)), "batches": len(emu.stateful.batches_of(k))}
    assert sum(k["total"] for k in doc["data"]) == 5  # two interaction turns, a file, a cache, a batch
    assert by_key[owner]["waits"] == 1 and sum(k["waits"] for k in doc["data"]) == 1
    [wait] = doc["recent_waits"]
    assert wait["key"] == owner and wait["kind"] == "interactions" and wait["operation"] == "interactions.create"
    assert wait["wait"] >= WAIT and wait["outcome"] == "ok" and wait["status"] == 200
    assert doc["batches_running"] == 1
    text = (await stack.admin_json("/admin/pins")).__repr__()
    assert not any(k in text for k in KEYS)
    async with aiohttp.ClientSession() as http, http.get(f"{stack.base}/admin/pins") as resp:
        assert resp.status == 401
