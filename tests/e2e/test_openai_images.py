"""POST /v1/images/generations through the openai SDK: Gemini image models (generateContent), Imagen (:predict),
OpenAI keys (passthrough)."""

from __future__ import annotations

import base64

import pytest
from openai import BadRequestError

from keymux.emulator import EmuKey

from .conftest import StackFactory, gemini_group

PNG = b"\x89PNG\r\n\x1a\n"


async def _rows(stack: object) -> list[dict[str, object]]:
    gw = stack.gateway  # type: ignore[attr-defined]
    await gw.ledger.flush()
    return await gw.ledger.recent(50, float("inf"))


async def test_a_gemini_image_model_makes_n_images_one_call_each(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("draw", ["k1", "k2"], model="gemini-2.5-flash-image")},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.keep_calls = True
    answer = await stack.openai().images.generate(model="draw", prompt="a blue square", n=2, size="1536x1024")
    assert len(answer.data) == 2
    assert all(base64.b64decode(d.b64_json).startswith(PNG) for d in answer.data)
    assert answer.usage is not None and answer.usage.output_tokens == 2 * (1290 + 4)  # image + its short text
    assert stack.gemini.count(endpoint="generateContent", status=200) == 2
    rows = await _rows(stack)
    assert len(rows) == 2 and all(r["completion_tokens"] == 1294 for r in rows)
    # the image's tokens at the image rate, its short text at the text rate (keymux/pricing.py)
    assert all(r["value"] == pytest.approx((r["prompt_tokens"] * 0.30 + 1290 * 30.0 + 4 * 2.50) / 1e6) for r in rows)


async def test_any_size_is_served_at_the_nearest_ratio(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("draw", ["k1"], model="gemini-2.5-flash-image")},
                             gemini_keys={"k1": EmuKey()})
    for size in ("1024x1024", "1792x1024", "1024x1536", "auto"):
        answer = await stack.openai().images.generate(model="draw", prompt="wide", size=size)  # type: ignore[arg-type]
        assert len(answer.data) == 1
    assert stack.gemini.count(status=400) == 0  # the emulator refuses ratios Gemini does not take


async def test_imagen_takes_n_in_one_predict_call_and_is_priced_per_image(make_stack: StackFactory) -> None:
    group = [{"model_name": "imagen", "litellm_params": {"model": "gemini/imagen-4.0-generate-001", "api_key": "k1"},
              "model_info": {"tier": "paid"}}]
    stack = await make_stack({"model_list": group},
                             gemini_keys={"k1": EmuKey()})
    answer = await stack.openai().images.generate(model="imagen", prompt="a lighthouse", n=3, size="1024x1792",
                                                  response_format="b64_json")
    assert len(answer.data) == 3 and all(base64.b64decode(d.b64_json).startswith(PNG) for d in answer.data)
    assert stack.gemini.count(endpoint="predict", status=200) == 1
    (row,) = await _rows(stack)
    assert row["cost"] == pytest.approx(3 * 0.04)


async def test_imagen_refuses_more_than_four_and_a_size_it_has_no_ratio_for_maps_near(
        make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("imagen", ["k1"], model="imagen-4.0-fast-generate-001")},
                             gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    with pytest.raises(BadRequestError) as err:
        await client.images.generate(model="imagen", prompt="x", n=5)
    assert err.value.body["param"] == "n" and "at most 4" in err.value.message
    answer = await client.images.generate(model="imagen", prompt="x", size="1536x1024")  # 3:2 -> 4:3 for Imagen
    assert len(answer.data) == 1


async def test_url_answers_are_refused_clearly(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("draw", ["k1"], model="gemini-2.5-flash-image")},
                             gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    with pytest.raises(BadRequestError) as err:
        await client.images.generate(model="draw", prompt="x", response_format="url")
    assert err.value.body["param"] == "response_format" and "b64_json" in err.value.message
    assert "stores no images" in err.value.message
    with pytest.raises(BadRequestError) as err:
        await client.images.generate(model="draw", prompt="x", size="big")  # type: ignore[arg-type]
    assert err.value.body["param"] == "size"
    with pytest.raises(BadRequestError) as err:
        await client.images.generate(model="draw", prompt="")
    assert err.value.body["param"] == "prompt"
    assert stack.gemini.count() == 0


async def test_a_failing_key_is_retried_on_another(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("draw", ["k1", "k2"], model="gemini-2.5-flash-image")},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "500")
    answer = await stack.openai().images.generate(model="draw", prompt="x")
    assert len(answer.data) == 1 and stack.gemini.count(status=500) == 1


async def test_openai_keys_pass_through(make_stack: StackFactory) -> None:
    group = [{"model_name": "draw", "litellm_params": {"model": "openai/gpt-image-1", "api_key": "sk-a"}}]
    stack = await make_stack({"model_list": group}, openai_keys={"sk-a": EmuKey()})
    answer = await stack.openai().images.generate(model="draw", prompt="a fox", n=2)
    assert len(answer.data) == 2 and base64.b64decode(answer.data[0].b64_json).startswith(PNG)
    assert answer.usage is not None and answer.usage.input_tokens > 0
    assert stack.openai_emu.count(endpoint="images.generations", status=200) == 1


async def test_image_edits_send_the_uploads_to_a_gemini_image_model(make_stack: StackFactory) -> None:
    from keymux.emulator.gemini_wire import PNG_BYTES

    stack = await make_stack({"model_list": gemini_group("draw", ["k1"], model="gemini-2.5-flash-image")},
                             gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    answer = await client.images.edit(model="draw", image=("cat.png", PNG_BYTES, "image/png"), prompt="add a hat",
                                      n=2, size="1024x1536")
    assert len(answer.data) == 2 and base64.b64decode(answer.data[0].b64_json).startswith(PNG)
    assert answer.usage is not None and answer.usage.input_tokens > 0
    several = await client.images.edit(model="draw", image=[("a.png", PNG_BYTES), ("b.png", PNG_BYTES)],
                                       prompt="merge them")
    assert len(several.data) == 1
    assert stack.gemini.count(endpoint="generateContent", status=200) == 3
    with pytest.raises(BadRequestError) as err:
        await client.images.edit(model="draw", image=("cat.png", PNG_BYTES), prompt="x",
                                 mask=("m.png", PNG_BYTES))
    assert err.value.body["param"] == "mask"
    with pytest.raises(BadRequestError) as err:
        await client.images.edit(model="draw", image=("notes.txt", b"hello"), prompt="x")
    assert err.value.body["param"] == "image"


async def test_image_edits_pass_through_to_openai_keys(make_stack: StackFactory) -> None:
    from keymux.emulator.gemini_wire import PNG_BYTES

    group = [{"model_name": "draw", "litellm_params": {"model": "openai/gpt-image-1", "api_key": "sk-a"}}]
    stack = await make_stack({"model_list": group}, openai_keys={"sk-a": EmuKey()})
    answer = await stack.openai().images.edit(model="draw", image=[("a.png", PNG_BYTES), ("b.png", PNG_BYTES)],
                                              prompt="two cats", n=2)
    assert len(answer.data) == 2 and answer.usage is not None and answer.usage.input_tokens_details.image_tokens == 646
    assert stack.openai_emu.count(endpoint="images.edits", status=200) == 1
