"""docker-compose.yml: the file validates (both profiles), and the `redis` profile's two replicas spend
one quota: 3 keys at 2 rpm give 6 upstream calls in all, whichever replica a request reaches.

Here the replicas run with host networking (no bridge on this machine) against this host's Redis and the
Gemini emulator, each on its own port (compose's Caddy proxy and Redis containers need registry images);
an override file says so, the rest is the compose file as users run it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from container_tests.docker import IMAGE, ROOT, Log, free_port, run
from keymux.emulator import EmuKey, GeminiEmulator
from tests.redis_service import delete_namespace

MASTER = "sk-keymux-compose-test"
KEYS = {f"GEMINI_{job}_KEY_{i}": f"emu-{job.lower()}-{i}" for job, n in (("CHAT", 3), ("IMAGE", 2), ("FIX", 2))
        for i in range(1, n + 1)}


def project(tmp: Path, env: dict[str, str]) -> Path:
    """The compose file and its deploy/ directory as a user's checkout has them, with a .env."""
    shutil.copy(ROOT / "docker-compose.yml", tmp / "docker-compose.yml")
    shutil.copytree(ROOT / "deploy", tmp / "deploy")
    (tmp / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return tmp


def compose(proj: Path, name: str, *args: str) -> list[str]:
    files = ["-f", str(proj / "docker-compose.yml")]
    if (proj / "host.yml").exists():
        files += ["-f", str(proj / "host.yml")]
    return ["docker-compose", "-p", name, "--project-directory", str(proj), *files, *args]


async def test_compose_file_validates_with_both_profiles(tmp_path: Path) -> None:
    proj = project(tmp_path, {"KEYMUX_MASTER_KEY": MASTER, **KEYS})
    rc, out = await run(*compose(proj, "kmxcheck", "config"), cwd=proj)
    assert rc == 0, out
    services = yaml.safe_load(out)["services"]
    # `docker compose up` starts the services of no profile: keymux alone
    assert {name for name, s in services.items() if not s.get("profiles")} == {"keymux"}
    assert {name for name, s in services.items() if s.get("profiles") == ["redis"]} == {
        "redis", "replica-1", "replica-2", "proxy"}
    keymux = services["keymux"]
    assert keymux["environment"]["KEYMUX_CONFIG"] == "/config/keymux.yaml"
    assert [v.split(":")[1] for v in keymux["volumes"]] == ["/config", "/data"]  # v1 prints SOURCE:TARGET[:MODE]
    assert services["replica-2"]["environment"]["KEYMUX_CONFIG"] == "/config/keymux-redis.yaml"
    assert services["replica-2"]["environment"]["REDIS_HOST"] == "redis"
    assert services["proxy"]["ports"] == keymux["ports"]  # one port, whichever way it runs
    rc, out = await run(*compose(proj, "kmxcheck", "--profile", "redis", "config", "-q"), cwd=proj)
    assert rc == 0, out


@pytest.fixture
async def emulator() -> AsyncIterator[GeminiEmulator]:
    emu = GeminiEmulator({key: EmuKey() for key in KEYS.values()})  # no limits upstream: keymux's own count
    await emu.serve()
    yield emu
    await emu.close()


async def test_redis_profile_replicas_share_one_quota(emulator: GeminiEmulator, tmp_path: Path) -> None:
    name = f"kmx{uuid.uuid4().hex[:8]}"
    ports = free_port(), free_port()
    proj = project(tmp_path, {"KEYMUX_MASTER_KEY": MASTER, **KEYS})
    (proj / "host.yml").write_text(yaml.safe_dump({"services": {
        f"replica-{i}": {"network_mode": "host", "environment": {
            "KEYMUX_PORT": str(port), "KEYMUX_HOST": "127.0.0.1", "REDIS_HOST": "127.0.0.1",
            "KEYMUX_REDIS_NAMESPACE": f"{name}-quota", "KEYMUX_GEMINI_API_BASE": emulator.base_url}}
        for i, port in enumerate(ports, 1)}}))
    env = {**os.environ, "KEYMUX_IMAGE": IMAGE}
    logs: list[Log] = []
    try:
        rc, out = await run(*compose(proj, name, "--profile", "redis", "up", "-d", "--no-deps", "--no-build",
                                     "replica-1", "replica-2"), env=env, cwd=proj)
        assert rc == 0, out
        for service in ("replica-1", "replica-2"):
            rc, cid = await run(*compose(proj, name, "ps", "-q", service), env=env, cwd=proj)
            assert rc == 0 and cid.strip(), cid
            logs.append(await Log.follow(cid.strip()))
        for log in logs:
            await log.wait_for("keymux listening")
        statuses = {port: [] for port in ports}
        auth = {"authorization": f"Bearer {MASTER}"}
        body = {"model": "gemini-pro-chat", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as http:
            for n in range(12):  # alternately: replica 1, replica 2, ...
                port = ports[n % 2]
                async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                                     headers=auth) as resp:
                    statuses[port].append(resp.status)
                    if resp.status == 429:
                        assert int(resp.headers["retry-after"]) > 0
        assert emulator.count(endpoint="generateContent") == 6, emulator.stats
        assert statuses == {port: [200, 200, 200, 429, 429, 429] for port in ports}
    finally:
        for log in logs:
            await log.close()
        await run(*compose(proj, name, "--profile", "redis", "down", "-v", "--timeout", "10"), env=env, cwd=proj)
        await delete_namespace(f"{name}-quota")
