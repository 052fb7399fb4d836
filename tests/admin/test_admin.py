"""The admin API: keys with state, limits and today's usage; operator actions; keys added at run time; usage."""

from __future__ import annotations

import asyncio

import pytest
from openai import RateLimitError

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from ..conftest import MASTER, OpsFactory, OpsStack, group

KEYS = {"k1": EmuKey(), "k2": EmuKey(), "k3": EmuKey(), "limited": EmuKey(rpm=1)}
FP = {k: fingerprint(k) for k in KEYS}


def doc(tmp_path, **router) -> dict:  # type: ignore[no-untyped-def]
    return {"model_list": group("chat", ["k1", "k2"], rpm=2, rpd=100),
            "router_settings": {"queue_timeout": 0, "num_retries": 1, **router},
            "general_settings": {"database_url": f"sqlite:///{tmp_path / 'admin.db'}"}}


async def keys_by_fp(stack: OpsStack) -> dict[str, dict]:
    status, body = await stack.admin("GET", "/admin/keys")
    assert status == 200, body
    return {k["key"]: k for k in body["data"]}


async def test_keys_show_state_limits_and_todays_usage(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    for _ in range(3):
        await stack.ask()
    keys = await keys_by_fp(stack)
    assert set(keys) == {FP["k1"], FP["k2"]}
    k = keys[FP["k1"]]
    assert k["provider"] == "gemini" and k["groups"] == ["chat"] and k["bucket"] == FP["k1"]
    model = k["models"][0]
    assert model["model"] == "gemini-2.5-flash" and model["state"] in ("ready", "cooling")
    limits = model["limits"]
    assert limits["rpm"]["limit"] == 2 and limits["rpd"]["limit"] == 100
    used = {fp: keys[fp]["models"][0]["limits"]["rpm"]["used"] for fp in keys}
    assert sorted(used.values()) == [1, 2]
    assert sum(keys[fp]["today"]["requests"] for fp in keys) == 3
    assert all(keys[fp]["today"]["tokens"] > 0 or keys[fp]["today"]["requests"] == 0 for fp in keys)
    assert sum(keys[fp]["today"]["value"] for fp in keys) > 0
    # Both keys used up for this minute: cooling, with until and why.
    await stack.ask()
    keys = await keys_by_fp(stack)
    for fp in keys:
        m = keys[fp]["models"][0]
        assert m["state"] == "cooling" and m["until"] and "rpm 2 reached" in m["why"]


async def test_admin_needs_the_master_key_and_answers_in_openai_shape(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    for key in (None, "wrong"):
        status, body = await stack.admin("GET", "/admin/keys", key=key)
        assert status == 401 and body["error"]["type"] == "authentication_error"
    status, body = await stack.admin("POST", "/admin/keys/gem:nothere/disable")
    assert status == 404 and body["error"]["message"] == "no key gem:nothere"
    status, body = await stack.admin("GET", "/admin/usage?by=nope")
    assert status == 400 and body["error"]["param"] == "by"


async def test_disable_enable_and_reset(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    status, _ = await stack.admin("POST", f"/admin/keys/{FP['k1']}/disable")
    assert status == 200
    for _ in range(2):
        answer = await stack.ask()
        assert answer.choices[0].message.content
    assert stack.gemini.count(key="k1") == 0 and stack.gemini.count(key="k2") == 2
    keys = await keys_by_fp(stack)
    assert keys[FP["k1"]]["state"] == "disabled" and keys[FP["k1"]]["models"][0]["why"] == "disabled by an operator"
    with pytest.raises(RateLimitError):
        await stack.ask()  # k2 is out for the minute, k1 disabled
    await stack.admin("POST", f"/admin/keys/{FP['k1']}/enable")
    await stack.ask()
    assert stack.gemini.count(key="k1") == 1
    # A 503 storm cools k2; reset clears it.
    gw = stack.gateway
    d = gw.pool.deployments_of(FP["k2"])[0]
    from keymux.pool.store import Park, State

    await gw.pool.store.park_scope(d.scope, Park(stack.clock.time() + 600, State.COOLING, "test park"))
    await gw.pool.store.record_failure(d.id, stack.clock.time(), 60)
    assert (await keys_by_fp(stack))[FP["k2"]]["state"] == "cooling"
    status, body = await stack.admin("POST", f"/admin/keys/{FP['k2']}/reset")
    assert status == 200 and body == {"key": FP["k2"], "reset": True}
    m = (await keys_by_fp(stack))[FP["k2"]]["models"][0]
    assert m["why"] != "test park"
    assert gw.pool.store._deps.get(d.id) is None  # failure count gone


async def test_a_key_added_at_run_time_takes_traffic_and_survives_a_restart(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    for _ in range(4):
        await stack.ask()
    with pytest.raises(RateLimitError):
        await stack.ask()  # k1 and k2: rpm 2 each, used
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", "rpm": 5})
    assert status == 201, body
    assert body["key"] == FP["k3"] and body["model"] == "gemini-2.5-flash" and "k3" not in repr(body)
    answer = await stack.ask()
    assert answer.choices[0].message.content and stack.gemini.count(key="k3") == 1
    keys = await keys_by_fp(stack)
    added = keys[FP["k3"]]
    assert added["added_at_run_time"] and added["models"][0]["limits"]["rpm"]["limit"] == 5
    assert added["models"][0]["limits"]["rpd"]["limit"] == 100  # inherited from the group
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3"})
    assert status == 409
    status, body = await stack.admin("POST", "/admin/keys", {"group": "nope", "api_key": "k3"})
    assert status == 400 and body["error"]["param"] == "model"
    # Restart on the same database: the key is back, the config file is untouched.
    text = stack.path.read_text()
    await stack.server.close()
    again = await ops_stack(stack.doc, reuse=stack)
    assert stack.path.read_text() == text and "k3" not in text
    assert FP["k3"] in {d.fingerprint for d in again.gateway.pool.groups["chat"]}
    # Delete: gone from the pool and from the database; config keys cannot be deleted.
    status, body = await again.admin("DELETE", f"/admin/keys/{FP['k3']}")
    assert status == 200 and body["removed"] == [f"chat/runtime:{FP['k3']}"]
    assert FP["k3"] not in {d.fingerprint for d in again.gateway.pool.groups["chat"]}
    status, body = await again.admin("DELETE", f"/admin/keys/{FP['k1']}")
    assert status == 409 and "config file" in body["error"]["message"]
    status, _ = await again.admin("DELETE", f"/admin/keys/{FP['k3']}")
    assert status == 404
    assert await again.gateway.ledger.runtime_keys() == []


async def test_removing_a_key_does_not_break_its_request_in_flight(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack({"model_list": group("solo", ["k1"]),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'f.db'}"}}, KEYS)
    await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", "model": "gemini/gemini-2.5-flash",
                                              "api_base": stack.gemini.base_url})
    stack.gemini.latency = 0.05
    pending = asyncio.create_task(stack.ask())
    for _ in range(10):
        await asyncio.sleep(0.005)
        if stack.gemini.count(key="k3"):
            break
    status, _ = await stack.admin("DELETE", f"/admin/keys/{FP['k3']}")
    assert status == 200
    answer = await pending
    assert answer.choices[0].message.content
    assert stack.gateway.live.snapshot.resolve("chat") is None


async def test_usage_and_requests(ops_stack: OpsFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = await ops_stack(doc(tmp_path), KEYS)
    await stack.ask()
    stack.clock.advance(3600)
    await stack.ask()
    await stack.ask()
    status, body = await stack.admin("GET", "/admin/usage?by=key&bucket=hour&since=2h")
    assert status == 200
    assert body["total"]["requests"] == 3 and len({r["bucket"] for r in body["data"]}) == 2
    assert all(r["key"] in (FP["k1"], FP["k2"]) for r in body["data"])
    for by, name in (("group", "chat"), ("client", "master"), ("model", "gemini-2.5-flash")):
        status, body = await stack.admin("GET", f"/admin/usage?by={by}")
        assert status == 200 and body["data"][0][by] == name and body["data"][0]["requests"] == 3
    status, body = await stack.admin("GET", "/admin/usage?since=30m")
    assert body["total"]["requests"] == 2
    status, body = await stack.admin("GET", "/admin/usage?since=yesterday")
    assert status == 400 and body["error"]["param"] == "since"
    status, page = await stack.admin("GET", "/admin/requests?limit=2")
    assert status == 200 and len(page["data"]) == 2 and page["data"][0]["at"] >= page["data"][1]["at"]
    assert page["data"][0]["group"] == "chat" and page["data"][0]["outcome"] == "ok"
    status, rest = await stack.admin("GET", f"/admin/requests?limit=2&before={page['next_before']}")
    assert len(rest["data"]) == 1 and rest["data"][0]["at"] < page["data"][-1]["at"]


async def test_no_raw_key_in_any_admin_metrics_ledger_or_log_output(ops_stack: OpsFactory, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    keys = {"AIzaSyAdminSecretOne": EmuKey(), "AIzaSyAdminSecretBad": EmuKey(status="leaked"),
            "AIzaSyAdminSecretAdded": EmuKey()}
    one, bad, added = keys
    caplog.set_level("DEBUG")
    stack = await ops_stack({"model_list": group("chat", [bad], order=1) + group("chat", [one], order=2),
                             "general_settings": {"database_url": f"sqlite:///{tmp_path / 'secret.db'}"}}, keys)
    await stack.ask()
    status, _ = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": added})
    assert status == 201
    blobs = b""
    for path in ("/admin/keys", "/admin/usage?by=key", "/admin/requests", "/metrics"):
        status, raw = await stack.admin("GET", path, raw=True)
        assert status == 200
        blobs += raw
    await stack.admin("POST", "/admin/reload")
    await stack.server.close()
    ledger_rows = b"".join(p.read_bytes() for p in tmp_path.glob("secret.db*") if p.suffix != ".key")
    logs = caplog.text.encode()
    for secret in (one, bad, MASTER):
        assert secret.encode() not in blobs and secret.encode() not in logs and secret.encode() not in ledger_rows
    assert added.encode() not in blobs and added.encode() not in logs
    # The run-time key itself is stored (it must survive a restart) encrypted, in a file only its owner
    # can read; so is the generated key it is encrypted with.
    assert added.encode() not in ledger_rows and b"fernet:" in ledger_rows
    assert oct((tmp_path / "secret.db").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "secret.db.key").stat().st_mode & 0o777) == "0o600"
