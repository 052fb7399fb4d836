"""google-genai 3.x `client.interactions` through keymux: first turns rotate the pool, follow-ups stay on the
key whose project holds the conversation (the emulator answers 404 to any other project's key)."""

from __future__ import annotations

import pytest
from google.genai._interactions_errors import APIStatusError

from keymux.emulator import EmuKey

from .conftest import gemini_group

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]


def _text(interaction: object) -> str:
    steps = getattr(interaction, "steps", None) or []
    return "".join(c.text for s in steps for c in (getattr(s, "content", None) or []) if getattr(c, "text", None))


async def _stack(make_stack, keys=KEYS, **emu):
    return await make_stack({"model_list": gemini_group("flash", keys)},
                            gemini_keys={k: EmuKey(**emu) for k in keys})


async def test_create_answers_and_records_usage(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    got = await client.aio.interactions.create(model="flash", input="hello there")
    assert got.status == "completed"
    assert "hello there" in _text(got)
    assert got.usage.total_tokens > 0
    assert sum(len(stack.gemini.interactions.owned_by(k)) for k in KEYS) == 1


async def test_stream_yields_the_event_types_in_order(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    kinds, text = [], ""
    async for event in await client.aio.interactions.create(model="flash", input="stream me please", stream=True):
        kinds.append(event.event_type)
        if event.event_type == "step.delta":
            text += event.delta.text
    assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed"
    assert "step.delta" in kinds
    assert "stream me please" in text


async def test_chain_of_three_turns_stays_on_the_first_key_while_others_rotate(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    first = await client.aio.interactions.create(model="flash", input="turn one")
    owner = next(k for k in KEYS if first.id in stack.gemini.interactions.owned_by(k))
    previous = first.id
    for n in (2, 3):
        for _ in range(3):  # other traffic: first turns and generate calls rotate over every key
            await client.aio.interactions.create(model="flash", input="unrelated")
            await client.aio.models.generate_content(model="flash", contents="unrelated")
        turn = await client.aio.interactions.create(model="flash", input=f"turn {n}",
                                                    previous_interaction_id=previous)
        assert _text(turn).startswith(f"turn {n}:")  # the emulator counts the chain's turns
        assert turn.id in stack.gemini.interactions.owned_by(owner)
        previous = turn.id
    others = {k for k in KEYS if k != owner}
    assert any(stack.gemini.count(k, endpoint="interactions.create") for k in others)  # the pool did rotate
    assert stack.gemini.count(status=404) == 0  # no follow-up ever reached another project


async def test_get_cancel_delete_reach_the_owner_and_unknown_ids_are_404(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    made = await client.aio.interactions.create(model="flash", input="keep me", background=True)
    assert made.status == "in_progress"
    polled = await client.aio.interactions.get(made.id)
    assert polled.status == "completed" and "keep me" in _text(polled)
    await client.aio.interactions.cancel(made.id)
    await client.aio.interactions.delete(made.id)
    with pytest.raises(APIStatusError) as gone:
        await client.aio.interactions.get(made.id)
    assert gone.value.status_code == 404
    assert stack.gemini.count(status=404) == 0  # keymux answered that itself: the pin was dropped


async def test_store_false_pins_nothing(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    made = await client.aio.interactions.create(model="flash", input="forget me", store=False)
    assert made.status == "completed"
    with pytest.raises(APIStatusError) as unknown:
        await client.aio.interactions.get(made.id)
    assert unknown.value.status_code == 404
