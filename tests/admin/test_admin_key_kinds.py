"""POST /admin/keys takes any deployment a model_list entry takes: an OpenAI-compatible vendor prefix, azure/ with
api_base and api_version, a wildcard; each is served, survives a restart, and its key is never echoed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keymux.clock import FakeClock
from keymux.emulator import EmuKey, OpenAIEmulator
from keymux.emulator.azure import AzureOpenAIEmulator

from ..conftest import MSG, T0, OpsFactory, OpsStack, group

SECRETS = ("gsk-admin-key-1", "az-key-1", "az-key-2", "AIza-wild-key-1")


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[OpenAIEmulator, AzureOpenAIEmulator]]:
    clock = FakeClock(T0)
    vendor = OpenAIEmulator({"gsk-admin-key-1": EmuKey()}, clock=clock, models=["llama-3.3-70b-versatile"])
    azure = AzureOpenAIEmulator({"az-key-1": EmuKey(), "az-key-2": EmuKey()}, clock=clock, models=["chatgpt-v-2"])
    await vendor.serve()
    await azure.serve()
    yield vendor, azure
    await vendor.close()
    await azure.close()


async def _stack(ops_stack: OpsFactory, tmp_path: Path, vendor: OpenAIEmulator, azure: AzureOpenAIEmulator,
                 keys: dict[str, EmuKey] | None = None) -> OpsStack:
    doc = {"model_list": group("chat", ["k1"]),
           "general_settings": {"database_url": f"sqlite:///{tmp_path / 'kinds.db'}",
                                "admin_api_base_allowlist": [f"{vendor.base_url}/v1", azure.base_url]}}
    return await ops_stack(doc, keys or {"k1": EmuKey(), "AIza-wild-key-1": EmuKey()})


async def _add(stack: OpsStack, spec: dict[str, Any]) -> dict[str, Any]:
    status, raw = await stack.admin("POST", "/admin/keys", spec, raw=True)
    assert status == 201, raw
    assert not any(s.encode() in raw for s in SECRETS)  # the answer names the key by its fingerprint only
    return orjson.loads(raw)


async def _all_kinds(stack: OpsStack, vendor: OpenAIEmulator, azure: AzureOpenAIEmulator) -> None:
    """Ask each group added at run time once; each reaches its own upstream with its own key."""
    client = stack.openai()
    for model in ("fast", "az", "gemini-2.5-pro"):
        answer = await client.chat.completions.create(model=model, messages=MSG)
        assert answer.choices[0].message.content
    assert (vendor.calls[-1].key, vendor.calls[-1].model) == ("gsk-admin-key-1", "llama-3.3-70b-versatile")
    assert azure.calls[-1].status == 200 and azure.headers[-1]["api-key"].startswith("az-key-")
    assert (stack.gemini.calls[-1].key, stack.gemini.calls[-1].model) == ("AIza-wild-key-1", "gemini-2.5-pro")


async def test_each_kind_of_deployment_can_be_added_at_run_time_and_survives_a_restart(
        ops_stack: OpsFactory, tmp_path: Path, upstreams: tuple[OpenAIEmulator, AzureOpenAIEmulator]) -> None:
    vendor, azure = upstreams
    stack = await _stack(ops_stack, tmp_path, vendor, azure)
    groq = await _add(stack, {"group": "fast", "model": "groq/llama-3.3-70b-versatile", "api_key": "gsk-admin-key-1",
                              "api_base": f"{vendor.base_url}/v1", "rpm": 30})
    assert (groq["provider"], groq["vendor"], groq["model"]) == ("openai", "groq", "llama-3.3-70b-versatile")
    az = await _add(stack, {"group": "az", "model": "azure/chatgpt-v-2", "api_key": "az-key-1",
                            "api_base": azure.base_url, "api_version": "2024-06-01"})
    assert az["vendor"] == "azure"
    # a second key joins the Azure group: it is addressed as the group is (deployment URL, api-version, api-key)
    second = await _add(stack, {"group": "az", "api_key": "az-key-2", "order": 1})
    assert second["vendor"] == "azure"
    wild = await _add(stack, {"group": "gemini/*", "model": "gemini/*", "api_key": "AIza-wild-key-1",
                              "api_base": stack.gemini.base_url})
    assert wild["model"] == "*"
    await _all_kinds(stack, vendor, azure)
    assert azure.headers[-1]["api-key"] == "az-key-2"  # order 1
    assert {d.cfg.api_version for d in stack.gateway.pool.groups["az"]} == {"2024-06-01"}

    listed = (await stack.admin("GET", "/admin/keys", raw=True))[1]
    assert not any(s.encode() in listed for s in SECRETS)

    await stack.server.close()
    again = await ops_stack(stack.doc, reuse=stack)
    assert {d.cfg.vendor for d in again.gateway.pool.groups["az"]} == {"azure"}
    assert {d.cfg.api_version for d in again.gateway.pool.groups["az"]} == {"2024-06-01"}
    await _all_kinds(again, vendor, azure)


async def test_a_vendor_without_api_base_goes_to_its_public_endpoint(
        ops_stack: OpsFactory, tmp_path: Path, upstreams: tuple[OpenAIEmulator, AzureOpenAIEmulator]) -> None:
    stack = await _stack(ops_stack, tmp_path, *upstreams)
    await _add(stack, {"group": "mistral", "model": "mistral/mistral-small-latest", "api_key": "mistral-key-0001"})
    (d,) = stack.gateway.pool.groups["mistral"]
    assert (d.cfg.provider, d.cfg.vendor, d.cfg.api_base) == ("openai", "mistral", "https://api.mistral.ai/v1")


@pytest.mark.parametrize(("spec", "param", "says"), [
    ({"model": "bedrock/anthropic.claude-3"}, "model", "provider 'bedrock' is not supported"),
    ({"model": "azure/"}, "model", "names no deployment"),
    ({"model": "azure/chatgpt-v-2"}, "api_base", "need an api_base"),
    ({"model": "groq/llama-3.3-70b-versatile", "api_version": "2024-06-01"}, "api_version", "azure/"),
    ({"model": "hosted_vllm/llama"}, "api_base", "need an api_base"),
])
async def test_a_deployment_keymux_cannot_serve_is_a_400_naming_the_field(
        ops_stack: OpsFactory, tmp_path: Path, upstreams: tuple[OpenAIEmulator, AzureOpenAIEmulator],
        spec: dict[str, Any], param: str, says: str) -> None:
    stack = await _stack(ops_stack, tmp_path, *upstreams)
    status, body = await stack.admin("POST", "/admin/keys", {"group": "new", "api_key": "some-key-0001", **spec})
    assert status == 400, body
    assert body["error"]["param"] == param and says in body["error"]["message"]
    assert "some-key-0001" not in str(body)
