"""GET /v1/models and /v1/models/{id} through the openai SDK: each group says which endpoints it serves."""

from __future__ import annotations

import pytest
from openai import AuthenticationError, NotFoundError

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group

GROUPS = (gemini_group("chat", ["k1"]) + gemini_group("embed", ["k1"], model="gemini-embedding-001")
          + gemini_group("draw", ["k1"], model="imagen-4.0-generate-001")
          + gemini_group("voice", ["k1"], model="gemini-2.5-flash-preview-tts")
          + [{"model_name": "oa-embed", "litellm_params": {"model": "openai/text-embedding-3-small", "api_key": "sk-a"}}])


async def test_the_list_says_which_endpoints_each_group_serves(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": GROUPS}, gemini_keys={"k1": EmuKey()}, openai_keys={"sk-a": EmuKey()})
    models = {m.id: m.model_extra for m in (await stack.openai().models.list()).data}
    assert list(models) == ["chat", "embed", "draw", "voice", "oa-embed"]
    assert models["chat"]["endpoints"] == ["/v1/chat/completions", "/v1/responses", "/v1/audio/transcriptions"]
    assert models["embed"]["endpoints"] == ["/v1/embeddings"]
    assert models["draw"]["endpoints"] == ["/v1/images/generations"]
    assert models["voice"]["endpoints"] == ["/v1/audio/speech"]
    assert models["oa-embed"]["endpoints"] == ["/v1/embeddings"]
    assert models["embed"]["upstream_models"] == ["gemini-embedding-001"]


async def test_retrieve_a_group_or_an_upstream_model_id(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": GROUPS}, gemini_keys={"k1": EmuKey()}, openai_keys={"sk-a": EmuKey()})
    client = stack.openai()
    one = await client.models.retrieve("embed")
    assert one.id == "embed" and one.object == "model" and one.owned_by == "keymux"
    assert one.model_extra["endpoints"] == ["/v1/embeddings"]
    alias = await client.models.retrieve("gemini-2.5-flash")  # an upstream model id routes too
    assert alias.model_extra["upstream_models"] == ["gemini-2.5-flash"]
    with pytest.raises(NotFoundError) as err:
        await client.models.retrieve("nope")
    assert err.value.body["type"] == "not_found_error" and "chat" in err.value.message
    with pytest.raises(AuthenticationError):
        await stack.openai("sk-wrong").models.retrieve("chat")
    assert stack.gemini.count() == 0  # answered from the configuration, no upstream call
