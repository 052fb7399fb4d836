"""Gateway keys through the admin API: shown once, stored as a hash, rotated, disabled, deleted, surviving a
restart; roles (a gateway key never reaches /admin or /metrics; a read-only admin key reads); usage per
client in /admin/usage?by=client and /metrics; no key in any output (bytes asserted)."""

from __future__ import annotations

import logging
from pathlib import Path

import openai
import pytest

from keymux.emulator import EmuKey

from ..conftest import MSG, OpsFactory, group

KEYS = {"AIzaSyAdminClients1": EmuKey()}
CONFIG_KEY = "sk-config-kept-key-0123456789"


def doc(db: str) -> dict:
    models = group("chat", ["AIzaSyAdminClients1"], input_cost_per_token=0.001, output_cost_per_token=0.001)
    for m in models:
        m["model_info"] = {"tier": "paid"}
    return {"model_list": models + group("other", ["AIzaSyAdminClients1"], model="gemini-2.5-pro"),
            "router_settings": {"queue_timeout": 0, "num_retries": 0},
            "general_settings": {"database_url": db,
                                 "virtual_keys": [{"key_alias": "from-file", "key": CONFIG_KEY, "rpm_limit": 5}]}}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


async def test_lifecycle_roles_usage_and_no_secret_anywhere(ops_stack: OpsFactory, db_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="keymux")
    stack = await ops_stack(doc(f"sqlite:///{db_path}"), KEYS)
    status, made = await stack.admin("POST", "/admin/clients", {"name": "image-job", "models": ["chat"], "rpm": 10,
                                                                "budget": "2/day", "soft_budget": 1})
    assert status == 201
    secret = made["key"]
    assert secret.startswith("sk-km-") and made["fingerprint"].startswith("key:")
    assert made["budget"] == {"usd": 2.0, "period": "day"} and made["rpm"] == 10
    # Shown once: listing, reading, the ledger never show it again.
    await stack.openai(secret).chat.completions.create(model="chat", messages=MSG)
    with pytest.raises(openai.PermissionDeniedError):
        await stack.openai(secret).chat.completions.create(model="other", messages=MSG)
    status, listed = await stack.admin("GET", "/admin/clients")
    assert status == 200
    mine = next(c for c in listed["data"] if c["name"] == "image-job")
    assert mine["usage"]["requests_today"] == 1 and mine["usage"]["spent"] > 0
    assert mine["usage"]["refused"] == 0  # scope refusals are not the counters' (they never reserve)
    assert {c["name"]: c["source"] for c in listed["data"]} == {"from-file": "config", "image-job": "admin"}
    status, usage = await stack.admin("GET", "/admin/usage?by=client&metrics=outcomes")
    assert status == 200
    row = next(r for r in usage["data"] if r["client"] == "image-job")
    assert row["requests"] == 2 and row["outcomes"]["ok"] == 1 and row["outcomes"]["refused"] == 1
    assert row["total_tokens"] > 0 and row["cost"] > 0
    status, metrics = await stack.admin("GET", "/metrics", raw=True)
    assert b'keymux_client_requests_total{client="image-job",outcome="refused"} 1' in metrics
    assert b'keymux_client_budget_usd{client="image-job"} 2' in metrics
    assert b'keymux_client_spent_usd{client="image-job"}' in metrics

    outputs = [made_bytes for _, made_bytes in [await stack.admin("GET", p, raw=True) for p in (
        "/admin/clients", "/admin/clients/image-job", "/admin/requests", "/admin/usage?by=client", "/metrics",
        "/key/list?return_full_object=true")]]
    await stack.gateway.ledger.flush()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("keymux", "aiohttp")))
    for out in [*outputs, ours.encode(), db_path.read_bytes()]:
        assert secret.encode() not in out and CONFIG_KEY.encode() not in out

    # Roles: a gateway key never reaches the admin API or /metrics; a read-only admin key reads only.
    for method, path in (("GET", "/admin/keys"), ("GET", "/admin/clients"), ("GET", "/metrics"),
                         ("POST", "/admin/clients"), ("GET", "/health"), ("GET", "/key/list")):
        status, body = await stack.admin(method, path, key=secret, json={} if method == "POST" else None, raw=True)
        assert status == 403, (method, path)
    status, reader = await stack.admin("POST", "/admin/clients", {"name": "dashboard", "admin": "read"})
    assert (await stack.admin("GET", "/admin/clients", key=reader["key"]))[0] == 200
    assert (await stack.admin("GET", "/metrics", key=reader["key"], raw=True))[0] == 200
    status, body = await stack.admin("POST", "/admin/clients", {"name": "sneaky"}, key=reader["key"])
    assert status == 403 and "read-only" in body["error"]["message"]
    status, _ = await stack.admin("DELETE", "/admin/clients/image-job", key=reader["key"])
    assert status == 403

    # Rotation: a new key, the same identity; the old key stops working.
    status, rotated = await stack.admin("POST", "/admin/clients/image-job/rotate")
    assert status == 200 and rotated["key"] != secret and rotated["name"] == "image-job"
    with pytest.raises(openai.AuthenticationError):
        await stack.openai(secret).chat.completions.create(model="chat", messages=MSG)
    await stack.openai(rotated["key"]).chat.completions.create(model="chat", messages=MSG)
    status, one = await stack.admin("GET", "/admin/clients/image-job")
    assert one["usage"]["requests_today"] == 2  # the same counters carry on

    # Keys from the config file are changed in the file, not here.
    status, body = await stack.admin("PATCH", "/admin/clients/from-file", {"rpm": 1})
    assert status == 409 and "config file" in body["error"]["message"]
    status, body = await stack.admin("PATCH", "/admin/clients/image-job", {"rpm": 0})
    assert status == 400 and body["error"]["param"] == "rpm"
    status, body = await stack.admin("POST", "/admin/clients", {"name": "x", "budget": "lots"})
    assert status == 400 and "2/day" in body["error"]["message"]

    # A restart keeps run-time keys (hash in the database) and this period's spend (read from the ledger).
    spent = one["usage"]["spent"]
    await stack.gateway.ledger.flush()  # what a stopping gateway does; the test keeps the old one running
    again = await ops_stack(stack.doc, reuse=stack)
    status, after = await again.admin("GET", "/admin/clients/image-job")
    assert status == 200 and after["usage"]["spent"] == pytest.approx(spent)
    await again.openai(rotated["key"]).chat.completions.create(model="chat", messages=MSG)
    await again.openai(CONFIG_KEY).chat.completions.create(model="chat", messages=MSG)

    status, gone = await again.admin("DELETE", "/admin/clients/image-job")
    assert status == 200 and gone["deleted"] == "image-job"
    with pytest.raises(openai.AuthenticationError):
        await again.openai(rotated["key"]).chat.completions.create(model="chat", messages=MSG)


async def test_litellm_key_routes_keep_litellm_scripts_working(ops_stack: OpsFactory, db_path: Path) -> None:
    stack = await ops_stack(doc(f"sqlite:///{db_path}"), KEYS)
    status, made = await stack.admin("POST", "/key/generate", {
        "key_alias": "litellm-script", "models": ["chat"], "max_budget": 5, "budget_duration": "30d",
        "rpm_limit": 1, "tpm_limit": 1000, "max_parallel_requests": 2, "duration": "7d", "metadata": {"team": "a"},
        "user_id": "u-1"})
    assert status == 200, made
    key, token = made["key"], made["token"]
    assert made["key_alias"] == "litellm-script" and made["max_budget"] == 5 and made["budget_duration"] == "1mo"
    assert made["rpm_limit"] == 1 and made["tpm_limit"] == 1000 and made["max_parallel_requests"] == 2
    assert made["expires"].startswith("20") and made["metadata"] == {"team": "a"}
    await stack.openai(key).chat.completions.create(model="chat", messages=MSG)
    with pytest.raises(openai.RateLimitError):
        await stack.openai(key).chat.completions.create(model="chat", messages=MSG)

    status, info = await stack.admin("GET", f"/key/info?key={token}")
    assert status == 200 and info["key"] == token and info["info"]["spend"] > 0
    status, own = await stack.admin("GET", "/key/info", key=key)  # a key reads its own info
    assert status == 200 and own["info"]["key_alias"] == "litellm-script"
    status, _ = await stack.admin("GET", f"/key/info?key={CONFIG_KEY}", key=key)  # but no other key's
    assert status == 403

    status, updated = await stack.admin("POST", "/key/update", {"key": key, "rpm_limit": 50, "blocked": False})
    assert status == 200 and updated["rpm_limit"] == 50
    await stack.openai(key).chat.completions.create(model="chat", messages=MSG)

    status, listed = await stack.admin("GET", "/key/list")
    assert status == 200 and token in listed["keys"] and listed["total_count"] == 2
    status, bad = await stack.admin("POST", "/key/generate", {"key_alias": "weekly", "max_budget": 1,
                                                              "budget_duration": "90m"})
    assert status == 400 and bad["error"]["param"] == "budget_duration"
    status, deleted = await stack.admin("POST", "/key/delete", {"keys": [key]})
    assert status == 200 and deleted == {"deleted_keys": [key]}
    with pytest.raises(openai.AuthenticationError):
        await stack.openai(key).chat.completions.create(model="chat", messages=MSG)
    assert (await stack.admin("GET", "/key/list", key=None))[0] == 401
