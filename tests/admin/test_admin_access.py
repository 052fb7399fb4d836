"""Who reaches the admin API and /metrics without a master key, whose X-Forwarded-For is believed, and which
hosts POST /admin/keys may point a key at (issue 17: admin input never chooses a host)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from keymux.config.load import ConfigError, parse_config
from keymux.emulator import EmuKey

from ..conftest import OpsFactory, OpsStack, group

KEYS = {"k1": EmuKey(), "k2": EmuKey(), "k3": EmuKey()}
ADMIN_PATHS = ("/admin/keys", "/admin/usage", "/admin/requests", "/metrics")


def doc(tmp_path: Any, **general: Any) -> dict[str, Any]:
    return {"model_list": group("chat", ["k1", "k2"]),
            "general_settings": {"database_url": f"sqlite:///{tmp_path / 'access.db'}", **general}}


async def get(stack: OpsStack, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{stack.base}{path}", headers=headers or {}) as r:
        return r.status, await r.read()


async def test_without_a_master_key_admin_and_metrics_are_off(ops_stack: OpsFactory, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path, master_key=None), KEYS)
    for path in ADMIN_PATHS:
        status, body = await get(stack, path)
        assert status == 403, (path, body)
        assert b"allow_unauthenticated_admin" in body and b"permission_error" in body
    status, _ = await stack.admin("POST", "/admin/keys/gem:x/disable", key=None)
    assert status == 403


async def test_loopback_opt_in_opens_them_to_this_machine(ops_stack: OpsFactory, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path, master_key=None, allow_unauthenticated_admin="loopback"), KEYS)
    for path in ADMIN_PATHS:
        status, body = await get(stack, path)
        assert status == 200, (path, body)


async def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(ops_stack: OpsFactory, tmp_path: Any) -> None:
    # The peer (127.0.0.1) is not a configured proxy: its X-Forwarded-For cannot make it someone else.
    stack = await ops_stack(doc(tmp_path, master_key=None, allow_unauthenticated_admin="loopback",
                                trusted_proxies=["10.0.0.0/8"]), KEYS)
    status, _ = await get(stack, "/admin/keys", {"X-Forwarded-For": "203.0.113.9"})
    assert status == 200


async def test_behind_a_trusted_proxy_the_forwarded_client_decides(ops_stack: OpsFactory, tmp_path: Any) -> None:
    # A reverse proxy on this host: everyone reaches keymux from 127.0.0.1, so loopback alone means nothing.
    stack = await ops_stack(doc(tmp_path, master_key=None, allow_unauthenticated_admin="loopback",
                                trusted_proxies=["127.0.0.1/32", "::1"]), KEYS)
    for path in ("/admin/keys", "/metrics"):
        status, body = await get(stack, path, {"X-Forwarded-For": "203.0.113.9"})
        assert status == 403, (path, body)
    # The client wrote the left part; the proxy appended the real address: the right-most untrusted hop counts.
    status, _ = await get(stack, "/admin/keys", {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})
    assert status == 403
    status, _ = await get(stack, "/admin/keys", {"X-Forwarded-For": "garbage"})
    assert status == 403
    status, _ = await get(stack, "/admin/keys", {"X-Forwarded-For": "::1"})  # a user on the proxy's host
    assert status == 200
    status, _ = await get(stack, "/admin/keys")  # the proxy itself, no header
    assert status == 200


async def test_a_master_key_still_opens_admin_from_anywhere(ops_stack: OpsFactory, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path, trusted_proxies=["127.0.0.1/32"]), KEYS)
    status, _ = await stack.admin("GET", "/admin/keys")
    assert status == 200
    status, _ = await get(stack, "/admin/keys", {"X-Forwarded-For": "203.0.113.9"})
    assert status == 401


async def test_admin_api_base_must_be_configured_or_allow_listed(ops_stack: OpsFactory, tmp_path: Any) -> None:
    stack = await ops_stack(doc(tmp_path, admin_api_base_allowlist=["HTTPS://Mirror.Example/v1beta/"]), KEYS)
    for base in ("http://attacker.example", "http://169.254.169.254/latest", 42):
        status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3", "api_base": base})
        assert status == 400, body
        assert body["error"]["param"] == "api_base" and "attacker" not in body["error"]["message"]
        status, body = await stack.admin("POST", "/admin/keys", {"group": "new", "api_key": "k3", "api_base": base,
                                                                 "model": "gemini/gemini-2.5-flash"})
        assert status == 400 and body["error"]["param"] == "api_base", body
    assert await stack.gateway.ledger.runtime_keys() == []
    assert "k3" not in {c.key for c in stack.gemini.calls}
    # The config file's own base (any spelling of it), and the allow-list, are fine.
    status, body = await stack.admin("POST", "/admin/keys", {"group": "chat", "api_key": "k3",
                                                             "api_base": stack.gemini.base_url + "/"})
    assert status == 201, body
    status, body = await stack.admin("POST", "/admin/keys", {"group": "other", "api_key": "k3",
                                                             "model": "gemini/gemini-2.5-flash",
                                                             "api_base": "https://mirror.example/v1beta"})
    assert status == 201, body
    answer = await stack.ask("chat")
    assert answer.choices[0].message.content


@pytest.mark.parametrize(("general", "path"), [
    ({"trusted_proxies": ["10.0.0.300/8"]}, "general_settings.trusted_proxies[0]"),
    ({"admin_api_base_allowlist": ["ftp://x"]}, "general_settings.admin_api_base_allowlist[0]"),
    ({"allow_unauthenticated_admin": "everyone"}, "general_settings.allow_unauthenticated_admin"),
])
def test_bad_access_settings_name_their_path(general: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": group("chat", ["k1"]), "general_settings": general}, source="cfg.yaml", env={})
    assert path in str(info.value)
