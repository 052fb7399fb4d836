"""POST /v1/embeddings through the official openai SDK, over Gemini keys (batchEmbedContents) and OpenAI keys."""

from __future__ import annotations

import pytest
from openai import APIStatusError, BadRequestError, NotFoundError, RateLimitError

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group

EMBED = "gemini-embedding-001"


def openai_group(name: str, keys: list[str], model: str = "text-embedding-3-small") -> list[dict[str, object]]:
    return [{"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_key": k}} for k in keys]


async def test_gemini_keys_embed_a_list_in_order_as_floats_and_base64(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED)}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    texts = ["alpha", "beta", "gamma"]
    floats = await client.embeddings.create(model="embed", input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2] and floats.model == "embed"
    assert all(len(d.embedding) == 8 for d in floats.data)
    alone = await client.embeddings.create(model="embed", input="beta", encoding_format="float")
    assert alone.data[0].embedding == floats.data[1].embedding  # each vector is its own input's
    assert floats.data[0].embedding != floats.data[1].embedding
    decoded = await client.embeddings.create(model="embed", input=texts)  # the SDK asks for base64 and decodes
    for a, b in zip(decoded.data, floats.data):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 2 + 1 + 2  # ceil(characters / 4) each
    assert stack.gemini.count(endpoint="batchEmbedContents") == 3


async def test_dimensions_become_output_dimensionality(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED)}, gemini_keys={"k1": EmuKey()})
    answer = await stack.openai().embeddings.create(model="embed", input=["a", "b"], dimensions=4,
                                                    encoding_format="float")
    assert [len(d.embedding) for d in answer.data] == [4, 4]


async def test_a_batch_past_geminis_limit_is_split_and_comes_back_in_order(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED)}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    texts = [f"text number {i}" for i in range(250)]
    answer = await client.embeddings.create(model="embed", input=texts, encoding_format="float")
    assert [d.index for d in answer.data] == list(range(250))
    probe = await client.embeddings.create(model="embed", input=[texts[0], texts[137], texts[249]],
                                           encoding_format="float")
    assert [answer.data[i].embedding for i in (0, 137, 249)] == [d.embedding for d in probe.data]
    assert answer.usage.total_tokens == sum(-(-len(t) // 4) for t in texts)
    assert stack.gemini.count(endpoint="batchEmbedContents", status=200) == 4  # 100 + 100 + 50, then the probe
    rows = await _rows(stack)
    assert sum(1 for r in rows if r["outcome"] == "ok") == 4


async def test_openai_keys_pass_through_including_token_arrays(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": openai_group("embed", ["sk-a"])}, openai_keys={"sk-a": EmuKey()})
    client = stack.openai()
    answer = await client.embeddings.create(model="embed", input=[[1, 2, 3], [4, 5]], dimensions=6)
    assert [len(d.embedding) for d in answer.data] == [6, 6]
    assert answer.model == "text-embedding-3-small"  # passed through as the upstream answered
    assert stack.openai_emu.count(endpoint="embeddings", status=200) == 1


async def test_token_arrays_over_gemini_keys_are_a_clear_400(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED)}, gemini_keys={"k1": EmuKey()})
    with pytest.raises(BadRequestError) as err:
        await stack.openai().embeddings.create(model="embed", input=[[1, 2, 3]])
    assert "token arrays" in err.value.message and err.value.body["param"] == "input"
    assert stack.gemini.count() == 0


async def test_bad_input_and_unknown_models_are_errors_in_openais_shape(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED)}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    with pytest.raises(BadRequestError) as err:
        await client.embeddings.create(model="embed", input=[])
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["param"] == "input"
    with pytest.raises(BadRequestError) as err:
        await client.embeddings.create(model="embed", input="x", encoding_format="int8")  # type: ignore[arg-type]
    assert err.value.body["param"] == "encoding_format"
    with pytest.raises(NotFoundError):
        await client.embeddings.create(model="nope", input="x")
    assert stack.gemini.count() == 0


async def test_a_failing_key_is_retried_on_another(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1", "k2"], model=EMBED)},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "503")
    answer = await stack.openai().embeddings.create(model="embed", input=["a"], encoding_format="float")
    assert len(answer.data) == 1
    assert stack.gemini.count(status=503) == 1 and stack.gemini.count(status=200) == 1


async def test_admission_counts_the_inputs_tokens_against_tpm(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED, tpm=100)},
                             gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    await client.embeddings.create(model="embed", input=["x" * 240], encoding_format="float")  # 60 tokens
    with pytest.raises(RateLimitError) as err:
        await client.embeddings.create(model="embed", input=["y" * 240], encoding_format="float")
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert stack.gemini.count() == 1  # the second was refused by keymux, never sent


async def test_embeddings_are_cached_by_default_when_the_cache_is_on(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model=EMBED),
                              "litellm_settings": {"cache": True}}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    first = await client.embeddings.with_raw_response.create(model="embed", input=["a", "b"])
    second = await client.embeddings.with_raw_response.create(model="embed", input=["a", "b"])
    assert first.headers["x-keymux-cache"] == "miss" and second.headers["x-keymux-cache"] == "hit"
    assert first.parse().data[1].embedding == second.parse().data[1].embedding
    assert stack.gemini.count(endpoint="batchEmbedContents") == 1


async def test_upstream_request_errors_come_back_in_openais_shape(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("embed", ["k1"], model="gemini-2.5-flash")},
                             gemini_keys={"k1": EmuKey()})
    with pytest.raises(APIStatusError) as err:
        await stack.openai().embeddings.create(model="embed", input="x")
    assert err.value.status_code == 404 and "gemini-2.5-flash" in err.value.message
    assert err.value.body["type"] == "not_found_error"


async def _rows(stack: object) -> list[dict[str, object]]:
    gw = stack.gateway  # type: ignore[attr-defined]
    await gw.ledger.flush()
    return await gw.ledger.recent(50, float("inf"))
