"""Gateway keys end to end with the official SDKs: scope (403), a rate limit hit (429, honest Retry-After,
the client's own limit), a budget crossed mid-run (refused with budget, spent, reset), unknown/disabled/expired
keys (401), in both the OpenAI and the Gemini error shapes."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from keymux.emulator import EmuKey

from ..conftest import MASTER, MSG, OpsFactory, OpsStack, group

KEYS = {"AIzaSyClientsGood1": EmuKey(), "AIzaSyClientsGood2": EmuKey()}
IMAGE_KEY = "sk-image-job-0123456789abcdef"
# A paid deployment with a known price: every emulator answer costs a measurable amount.
PAID = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002, "model_info": {"tier": "paid"}}


def doc(db: str, **key_fields: object) -> dict:
    models = group("chat", ["AIzaSyClientsGood1"]) + group("image", ["AIzaSyClientsGood2"])
    for entry in models:
        entry["litellm_params"].update({k: v for k, v in PAID.items() if k != "model_info"})
        entry["model_info"] = PAID["model_info"]
    return {"model_list": models, "router_settings": {"queue_timeout": 0, "num_retries": 0},
            "general_settings": {"database_url": db,
                                 "virtual_keys": [{"name": "image-job", "key": IMAGE_KEY, "models": ["image"],
                                                   **key_fields}]}}


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def gemini(stack: OpsStack, key: str) -> genai.Client:
    return genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=stack.base, api_version="v1beta"))


async def test_scoped_key_is_refused_on_another_group_in_both_shapes(ops_stack: OpsFactory, db: str) -> None:
    stack = await ops_stack(doc(db), KEYS)
    client = stack.openai(IMAGE_KEY)
    ok = await client.chat.completions.create(model="image", messages=MSG)
    assert ok.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as e:
        await client.chat.completions.create(model="chat", messages=MSG)
    assert e.value.status_code == 403
    assert "may not use model group 'chat'" in e.value.message and "image" in e.value.message
    with pytest.raises(genai_errors.ClientError) as g:
        await gemini(stack, IMAGE_KEY).aio.models.generate_content(model="chat", contents="hi")
    assert g.value.code == 403 and g.value.status == "PERMISSION_DENIED"
    # The refused requests never reached the upstream: only the allowed one did.
    assert len(stack.gemini.calls) == 1
    # The master key still reaches every group.
    assert (await stack.openai(MASTER).chat.completions.create(model="chat", messages=MSG)).choices


async def test_rate_limit_hit_is_the_clients_own_with_an_honest_retry_after(ops_stack: OpsFactory, db: str) -> None:
    stack = await ops_stack(doc(db, rpm=2), KEYS)
    stack.clock.advance(20.0 - stack.clock.time() % 60)  # 20 s into a minute: 40 s until the window ends
    client = stack.openai(IMAGE_KEY)
    for _ in range(2):
        await client.chat.completions.create(model="image", messages=MSG)
    with pytest.raises(openai.RateLimitError) as e:
        await client.chat.completions.create(model="image", messages=MSG)
    assert e.value.response.headers["retry-after"] == "40"
    assert "its own rate limit of 2 requests per minute" in e.value.message
    assert "not the pool's" in e.value.message
    assert len(stack.gemini.calls) == 2  # the refused one spent no upstream quota
    stack.clock.advance(40.0)
    assert (await client.chat.completions.create(model="image", messages=MSG)).choices


async def test_budget_crossed_mid_run_refuses_with_budget_spent_and_reset(ops_stack: OpsFactory, db: str) -> None:
    stack = await ops_stack(doc(db, budget="0.05/day"), KEYS)
    client = stack.openai(IMAGE_KEY)
    answered = 0
    with pytest.raises(openai.RateLimitError) as e:
        for _ in range(100):
            await client.chat.completions.create(model="image", messages=MSG)
            answered += 1
    assert answered >= 1
    message = e.value.message
    assert "budget of $0.05/day" in message and "spent" in message and "resets 20" in message
    assert e.value.body["type"] == "budget_exceeded"
    retry = int(e.value.response.headers["retry-after"])
    assert 0 < retry <= 86400
    # Sequential requests: the budget was crossed by the last one answered, never by more.
    rows = await stack.gateway.ledger.usage("client", 0, 1e18, None)
    mine = next(r for r in rows if r["client"] == "image-job")
    last = mine["cost"] / answered
    assert 0.05 <= mine["cost"] < 0.05 + last + 1e-9
    # A new day (UTC midnight by default): the budget is there again.
    stack.clock.advance(retry)
    assert (await client.chat.completions.create(model="image", messages=MSG)).choices


async def test_unknown_disabled_and_expired_keys_get_401(ops_stack: OpsFactory, db: str) -> None:
    stack = await ops_stack(doc(db), KEYS)
    with pytest.raises(openai.AuthenticationError):
        await stack.openai("sk-km-not-a-key-at-all-000000").chat.completions.create(model="image", messages=MSG)
    status, made = await stack.admin("POST", "/admin/clients", {"name": "script", "expires": "1h"})
    assert status == 201
    client = stack.openai(made["key"])
    assert (await client.chat.completions.create(model="chat", messages=MSG)).choices
    status, _ = await stack.admin("POST", "/admin/clients/script/disable")
    assert status == 200
    with pytest.raises(openai.AuthenticationError) as e:
        await client.chat.completions.create(model="chat", messages=MSG)
    assert "disabled" in e.value.message
    await stack.admin("POST", "/admin/clients/script/enable")
    assert (await client.chat.completions.create(model="chat", messages=MSG)).choices
    stack.clock.advance(3601)
    with pytest.raises(genai_errors.ClientError) as g:
        await gemini(stack, made["key"]).aio.models.generate_content(model="chat", contents="hi")
    assert g.value.code == 401 and "expired" in (g.value.message or "")
