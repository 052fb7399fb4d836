"""Gemini quota windows driven by a FakeClock: per minute, per day (Pacific midnight), projects."""

from __future__ import annotations

from typing import Any

from keymux.clock import FakeClock
from keymux.emulator import GeminiEmulator

MODEL = "gemini-2.5-flash"
QUOTA = "type.googleapis.com/google.rpc.QuotaFailure"
HEAD = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
    "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. "
)


def _quota_body(metric: str, qid: str, limit: int, model: str, delay: str) -> dict[str, Any]:
    return {"error": {
        "code": 429,
        "message": f"{HEAD}\n* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
                   f"Please retry in {delay}.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": QUOTA, "violations": [{
                "quotaMetric": metric, "quotaId": qid,
                "quotaDimensions": {"location": "global", "model": model}, "quotaValue": str(limit)}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
        ]}}


REQS = "generativelanguage.googleapis.com/generate_content_free_tier_requests"


async def test_per_minute_body_and_window(post: Any, gemini: GeminiEmulator, clock: FakeClock) -> None:
    assert (await post("k1"))[0] == 200
    clock.advance(33.876544)
    assert (await post("k1"))[0] == 200
    clock.advance(0.5)
    status, body = await post("k1")
    assert status == 429
    assert body == _quota_body(REQS, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", 2, MODEL,
                               "25.623456s")
    clock.advance(25.62345)
    assert (await post("k1"))[0] == 429  # 6 µs early
    clock.advance(0.000006)
    assert (await post("k1"))[0] == 200  # the first request left the window
    assert (await post("k1"))[0] == 429
    assert gemini.count(key="k1", kind="rate_limited") == 3
    assert gemini.count(key="k1", kind="ok") == 3
    # other models have their own counters
    assert (await post("k1", model="gemini-2.5-pro"))[0] == 200


async def test_per_minute_frees_after_60s(post: Any, clock: FakeClock) -> None:
    assert [(await post("k1"))[0] for _ in range(3)] == [200, 200, 429]
    status, body = await post("k1")
    assert body["error"]["details"][2]["retryDelay"] == "60s"
    clock.advance(60)
    assert [(await post("k1"))[0] for _ in range(3)] == [200, 200, 429]


async def test_whole_second_retry_option(post: Any, gemini: GeminiEmulator, clock: FakeClock) -> None:
    gemini.whole_second_retry = True
    await post("k1")
    clock.advance(0.25)
    await post("k1")
    status, body = await post("k1")
    assert body["error"]["details"][2]["retryDelay"] == "59s"
    assert "Please retry in 59.750s." in body["error"]["message"]


async def test_tpm(post: Any) -> None:
    long = {"contents": [{"parts": [{"text": "x" * 240}]}]}  # 60 tokens
    assert (await post("tpm", body=long))[0] == 200
    status, body = await post("tpm", body=long)
    assert status == 429
    v = body["error"]["details"][0]["violations"][0]
    assert v["quotaId"] == "GenerateContentInputTokensPerModelPerMinute-FreeTier"
    assert v["quotaMetric"] == "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
    assert v["quotaValue"] == "100"
    assert "limit: 100, model: gemini-2.5-flash" in body["error"]["message"]
    assert (await post("tpm", body={"contents": [{"parts": [{"text": "x" * 100}]}]}))[0] == 200


async def test_per_day_resets_at_pacific_midnight(
    post: Any, gemini: GeminiEmulator, clock: FakeClock, to_pacific: Any
) -> None:
    clock.set(to_pacific(2026, 1, 15, 12, 0, 0))
    for _ in range(5):
        assert (await post("k1"))[0] == 200
        clock.advance(61)
    clock.set(to_pacific(2026, 1, 15, 23, 59, 59))
    status, body = await post("k1")
    assert status == 429
    assert body["error"]["details"][0]["violations"][0]["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert "limit: 5, model: gemini-2.5-flash" in body["error"]["message"]
    delay = body["error"]["details"][2]["retryDelay"]
    assert delay == "1s"  # short, like Google: it does not say "until midnight"
    clock.advance(0.999)
    assert (await post("k1"))[0] == 429
    clock.advance(0.001)  # 00:00:00 Pacific
    assert (await post("k1"))[0] == 200
    assert gemini.count(key="k1", kind="daily_exhausted") == 2


async def test_per_day_window_across_dst(post: Any, clock: FakeClock, to_pacific: Any) -> None:
    clock.set(to_pacific(2026, 3, 7, 23, 0, 0))
    for _ in range(5):
        assert (await post("k1"))[0] == 200
        clock.advance(61)
    assert (await post("k1"))[0] == 429
    clock.set(to_pacific(2026, 3, 8, 0, 0, 0))
    assert (await post("k1"))[0] == 200


async def test_free_limit_zero(post: Any, gemini: GeminiEmulator) -> None:
    status, body = await post("zero")
    assert status == 429
    v = body["error"]["details"][0]["violations"][0]
    assert v["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel-FreeTier" and v["quotaValue"] == "0"
    assert "limit: 0, model: gemini-2.5-flash" in body["error"]["message"]
    assert gemini.count(key="zero", kind="daily_exhausted") == 1


async def test_project_shares_counters(post: Any, gemini: GeminiEmulator, clock: FakeClock) -> None:
    assert (await post("pa"))[0] == 200
    assert (await post("pb"))[0] == 200
    assert (await post("pa"))[0] == 200
    assert (await post("pb"))[0] == 429
    assert (await post("pa"))[0] == 429
    assert (await post("k2"))[0] == 200  # other keys are unaffected
    clock.advance(60)
    assert (await post("pb"))[0] == 200


async def test_only_successes_count(post: Any, gemini: GeminiEmulator) -> None:
    assert (await post("k1", body=b"nope"))[0] == 400
    assert (await post("k1", body={"contents": []}))[0] == 400
    gemini.inject("k1", "503")
    assert (await post("k1"))[0] == 503
    assert [(await post("k1"))[0] for _ in range(3)] == [200, 200, 429]


async def test_count_tokens_not_counted(post: Any, gemini: GeminiEmulator) -> None:
    body = {"contents": [{"parts": [{"text": "hello world, count me"}]}]}  # 21 chars
    for _ in range(4):
        assert await post("k1", body=body, method="countTokens") == (
            200, {"totalTokens": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]})
    wrapped = {"generateContentRequest": {"model": f"models/{MODEL}", **body}}
    assert (await post("k1", body=wrapped, method="countTokens"))[1]["totalTokens"] == 5
    assert [(await post("k1"))[0] for _ in range(3)] == [200, 200, 429]
    assert gemini.count(endpoint="countTokens") == 5
