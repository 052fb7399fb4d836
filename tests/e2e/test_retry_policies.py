"""LiteLLM's `retry_policy`, `model_group_retry_policy` and `allowed_fails_policy`, through the SDKs against the
emulators' fault modes, counting what reached the upstream: the policy decides how many more keys a class of
failure gets and how many failures cool a deployment; keymux's own verdicts (a 429 parks its key) still apply."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import errors as genai_errors
from openai import APIStatusError

from keymux.emulator import EmuKey

from .conftest import StackFactory

MSG = [{"role": "user", "content": "hello there"}]


def _group(name: str, keys: list[str], provider: str = "gemini", model: str = "gemini-2.5-flash") -> list[dict[str, Any]]:
    """One deployment per key, tried in the order given (`order`), so the test knows which key comes first."""
    return [{"model_name": name, "litellm_params": {"model": f"{provider}/{model}", "api_key": k, "order": n}}
            for n, k in enumerate(keys, start=1)]


def _calls(emu: Any) -> list[tuple[str, int]]:
    return [(c.key, c.status) for c in emu.calls]


@pytest.mark.parametrize(("retries", "attempts"), [(None, 3), (0, 1), (1, 2)])
async def test_internal_server_error_retries_decide_how_many_keys_a_500_gets(
        make_stack: StackFactory, retries: int | None, attempts: int) -> None:
    policy = {} if retries is None else {"retry_policy": {"InternalServerErrorRetries": retries}}
    doc = {"model_list": _group("chat", ["k1", "k2", "k3"]), "router_settings": {"num_retries": 2, **policy}}
    stack = await make_stack(doc, gemini_keys={k: EmuKey() for k in ("k1", "k2", "k3")})
    stack.gemini.inject(None, "500", "500", "500")
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="chat", messages=MSG)
    assert err.value.status_code == 500
    assert _calls(stack.gemini) == [(k, 500) for k in ("k1", "k2", "k3")[:attempts]]


async def test_rate_limit_retries_may_go_past_num_retries(make_stack: StackFactory) -> None:
    keys = ["k1", "k2", "k3", "k4", "k5"]
    doc = {"model_list": _group("chat", keys),
           "router_settings": {"num_retries": 1, "retry_policy": {"RateLimitErrorRetries": 4}}}
    stack = await make_stack(doc, gemini_keys={k: EmuKey() for k in keys})
    stack.gemini.inject(None, *["array429"] * 4)
    answer = await stack.openai().chat.completions.create(model="chat", messages=MSG)
    assert answer.choices[0].message.content
    assert _calls(stack.gemini) == [("k1", 429), ("k2", 429), ("k3", 429), ("k4", 429), ("k5", 200)]


async def test_no_rate_limit_retries_still_parks_the_key_that_answered_429(make_stack: StackFactory) -> None:
    doc = {"model_list": _group("chat", ["k1", "k2"]), "router_settings": {"retry_policy": {"RateLimitErrorRetries": 0}}}
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject("k1", "array429")
    client = stack.openai()
    with pytest.raises(APIStatusError) as err:
        await client.chat.completions.create(model="chat", messages=MSG)
    assert err.value.status_code == 429 and err.value.response.headers.get("retry-after")
    await client.chat.completions.create(model="chat", messages=MSG)  # k1 is parked for Google's retryDelay
    assert _calls(stack.gemini) == [("k1", 429), ("k2", 200)]


async def test_model_group_retry_policy_replaces_the_router_policy_for_its_group(make_stack: StackFactory) -> None:
    doc = {"model_list": _group("strict", ["s1", "s2", "s3"]) + _group("loose", ["l1", "l2", "l3"]),
           "router_settings": {"num_retries": 2, "retry_policy": {"InternalServerErrorRetries": 1},
                               "model_group_retry_policy": {"strict": {"InternalServerErrorRetries": 0}}}}
    stack = await make_stack(doc, gemini_keys={k: EmuKey() for k in ("s1", "s2", "s3", "l1", "l2", "l3")})
    client = stack.openai()
    for group in ("strict", "loose"):
        stack.gemini.inject(None, "500", "500", "500")
        with pytest.raises(APIStatusError):
            await client.chat.completions.create(model=group, messages=MSG)
        stack.gemini.faults.clear()
    assert _calls(stack.gemini) == [("s1", 500), ("l1", 500), ("l2", 500)]


@pytest.mark.parametrize("retried", [False, True])
async def test_bad_request_retries_try_another_key_for_a_keys_own_400(make_stack: StackFactory, retried: bool) -> None:
    """Google's 400 FAILED_PRECONDITION "User location is not supported" belongs to one key's project: with
    BadRequestErrorRetries the next key answers; without, the client gets the 400 (keymux never retries a
    request's own error by default). Neither way is the key blamed."""
    policy = {"retry_policy": {"BadRequestErrorRetries": 1}} if retried else {}
    doc = {"model_list": _group("chat", ["far", "near"]), "router_settings": policy}
    stack = await make_stack(doc, gemini_keys={"far": EmuKey(status="location"), "near": EmuKey()})
    client = stack.genai()
    if retried:
        answer = await client.aio.models.generate_content(model="chat", contents="hello")
        assert answer.text
        assert _calls(stack.gemini) == [("far", 400), ("near", 200)]
    else:
        with pytest.raises(genai_errors.ClientError) as err:
            await client.aio.models.generate_content(model="chat", contents="hello")
        assert err.value.code == 400 and "location is not supported" in str(err.value.message)
        assert _calls(stack.gemini) == [("far", 400)]
    keys = {k["key"]: k for k in (await stack.admin_json("/admin/keys"))["data"]}
    assert all(k["state"] == "ready" for k in keys.values())


@pytest.mark.parametrize("retries", [0, 1])
async def test_content_policy_retries_are_their_own_class(make_stack: StackFactory, retries: int) -> None:
    doc = {"model_list": _group("gpt", ["o1", "o2"], provider="openai", model="gpt-4o-mini"),
           "router_settings": {"retry_policy": {"ContentPolicyViolationErrorRetries": retries,
                                                "BadRequestErrorRetries": 0}}}
    stack = await make_stack(doc, openai_keys={"o1": EmuKey(), "o2": EmuKey()})
    stack.openai_emu.inject("o1", "content_policy")
    client = stack.openai()
    if retries:
        answer = await client.chat.completions.create(model="gpt", messages=MSG)
        assert answer.choices[0].message.content
        assert _calls(stack.openai_emu) == [("o1", 400), ("o2", 200)]
    else:
        with pytest.raises(APIStatusError) as err:
            await client.chat.completions.create(model="gpt", messages=MSG)
        assert err.value.status_code == 400 and err.value.code == "content_policy_violation"
        assert _calls(stack.openai_emu) == [("o1", 400)]


async def test_timeout_retries_zero_gives_up_after_the_first_timeout(make_stack: StackFactory) -> None:
    doc = {"model_list": _group("chat", ["k1", "k2"]),
           "router_settings": {"timeout": 0.2, "retry_policy": {"TimeoutErrorRetries": 0}}}
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "timeout")
    with pytest.raises(APIStatusError) as err:
        await stack.openai().chat.completions.create(model="chat", messages=MSG)
    assert err.value.status_code == 504
    assert [c.key for c in stack.gemini.calls] == ["k1"]


@pytest.mark.parametrize("allowed", [None, 1])
async def test_internal_server_error_allowed_fails_cools_the_deployment_sooner(
        make_stack: StackFactory, allowed: int | None) -> None:
    policy = {} if allowed is None else {"allowed_fails_policy": {"InternalServerErrorAllowedFails": allowed}}
    doc = {"model_list": _group("chat", ["k1", "k2"]),
           "router_settings": {"allowed_fails": 3, "cooldown_time": 120, **policy}}
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject("k1", "500")
    client = stack.openai()
    for _ in range(2):
        await client.chat.completions.create(model="chat", messages=MSG)
    second = "k2" if allowed else "k1"  # one 500 reached InternalServerErrorAllowedFails: k1 cools for 120 s
    assert _calls(stack.gemini) == [("k1", 500), ("k2", 200), (second, 200)]
    stack.clock.advance(121)
    await client.chat.completions.create(model="chat", messages=MSG)
    assert _calls(stack.gemini)[-1] == ("k1", 200)


@pytest.mark.parametrize("allowed", [None, 2])
async def test_rate_limit_allowed_fails_benches_a_key_that_keeps_answering_429(
        make_stack: StackFactory, allowed: int | None) -> None:
    """Each 429 parks k1 for Google's 30 s retryDelay; with RateLimitErrorAllowedFails 2 the second one in a
    minute also cools the deployment for cooldown_time, so k1 is left alone after its delay has passed."""
    policy = {} if allowed is None else {"allowed_fails_policy": {"RateLimitErrorAllowedFails": allowed}}
    doc = {"model_list": _group("chat", ["k1", "k2"]), "router_settings": {"cooldown_time": 600, **policy}}
    stack = await make_stack(doc, gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    client = stack.openai()
    for _ in range(2):
        stack.gemini.inject("k1", "array429")
        await client.chat.completions.create(model="chat", messages=MSG)
        stack.clock.advance(31)
    await client.chat.completions.create(model="chat", messages=MSG)
    last = "k2" if allowed else "k1"
    assert _calls(stack.gemini) == [("k1", 429), ("k2", 200), ("k1", 429), ("k2", 200), (last, 200)]
