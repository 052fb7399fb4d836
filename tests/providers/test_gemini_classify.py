"""Gemini answers -> verdicts, on the exact bodies Google sends (reference/gemini-wire.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from keymux.pool.limits import next_pacific_midnight
from keymux.providers.base import Outcome
from keymux.providers.gemini import classify, model_url

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC).timestamp()
HELP = {"@type": "type.googleapis.com/google.rpc.Help",
        "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}


def quota_body(quota_id: str, value: str | None, delay: str, metric: str = "generate_content_free_tier_requests",
               message: str = "You exceeded your current quota, please check your plan and billing details.") -> bytes:
    violation = {"quotaMetric": f"generativelanguage.googleapis.com/{metric}", "quotaId": quota_id,
                 "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}}
    if value is not None:
        violation["quotaValue"] = value
    return orjson.dumps({"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}, HELP,
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}})


def test_per_minute_quota_parks_for_the_retry_delay_and_learns_the_limit() -> None:
    body = quota_body("GenerateContentInputTokensPerModelPerMinute-FreeTier", "250000", "26s",
                      metric="generate_content_free_tier_input_token_count")
    v = classify(429, body, NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == 26.0
    assert v.learned_limit == ("tpm", 250000)
    assert "Google asked to wait 26 s" in v.reason


def test_fractional_retry_delay_is_kept() -> None:
    v = classify(429, quota_body("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "2", "26.123456s"), NOW)
    assert v.retry_after == pytest.approx(26.123456) and v.learned_limit == ("rpm", 2)


def test_per_day_quota_means_midnight_pacific_despite_a_short_retry_delay() -> None:
    v = classify(429, quota_body("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "20", "51s"), NOW)
    assert v.outcome is Outcome.DAILY_EXHAUSTED
    assert v.until == next_pacific_midnight(NOW) and v.learned_limit == ("rpd", 20)
    assert "back at 00:00 PT" in v.reason


def test_limit_zero_means_no_free_quota_until_midnight() -> None:
    msg = ("Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, "
           "limit: 0, model: gemini-2.5-pro. Please retry in 51.606482386s.")
    body = orjson.dumps({"error": {"code": 429, "message": msg, "status": "RESOURCE_EXHAUSTED"}})
    v = classify(429, body, NOW)
    assert v.outcome is Outcome.DAILY_EXHAUSTED and "no free quota" in v.reason


def test_retry_delay_read_from_the_message_when_details_are_missing() -> None:
    body = orjson.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                   "message": "Quota exceeded for metric: x, limit: 5. Please retry in 12.5s."}})
    v = classify(429, body, NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == 12.5


def test_bare_429_backs_off() -> None:
    body = orjson.dumps({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                   "status": "RESOURCE_EXHAUSTED"}})
    assert classify(429, body, NOW).outcome is Outcome.BACKOFF


def test_array_wrapped_error_is_read_like_the_plain_one() -> None:
    inner = orjson.loads(quota_body("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "2", "7s"))
    v = classify(429, orjson.dumps([inner]), NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == 7.0


def test_several_violations_any_per_day_wins() -> None:
    body = orjson.loads(quota_body("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "2", "30s"))
    body["error"]["details"][0]["violations"].append(
        {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "50"})
    body["error"]["details"].reverse()  # detail order varies
    assert classify(429, orjson.dumps(body), NOW).outcome is Outcome.DAILY_EXHAUSTED


@pytest.mark.parametrize("status,body,reason", [
    (400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                  "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}},
     "invalid key"),
    (400, {"error": {"code": 400, "message": "API Key not found. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}},
     "invalid key"),
    (403, {"error": {"code": 403, "message": "Your API key was reported as leaked. Please use another API key.",
                     "status": "PERMISSION_DENIED"}}, "leaked"),
    (403, {"error": {"code": 403, "message": "Permission denied: Consumer 'api_key:AIzaSyXXXX' has been suspended.",
                     "status": "PERMISSION_DENIED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                                 "reason": "CONSUMER_SUSPENDED"}]}}, "suspended"),
    (403, {"error": {"code": 403, "message": "Generative Language API has not been used in project 1 before or it is disabled.",
                     "status": "PERMISSION_DENIED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                                 "reason": "SERVICE_DISABLED"}]}}, "disabled"),
])
def test_keys_google_refuses_are_disabled(status: int, body: dict, reason: str) -> None:
    v = classify(status, orjson.dumps(body), NOW)
    assert v.outcome is Outcome.INVALID_KEY and reason in v.reason
    assert "AIza" not in v.reason


@pytest.mark.parametrize("status,message", [(503, "The model is overloaded. Please try again later."),
                                            (500, "An internal error has occurred.")])
def test_server_errors_are_retryable_not_the_keys_fault(status: int, message: str) -> None:
    v = classify(status, orjson.dumps({"error": {"code": status, "message": message}}), NOW)
    assert v.outcome is Outcome.UPSTREAM_ERROR and v.retryable


@pytest.mark.parametrize("status,message,google", [
    (404, "models/x is not found for API version v1beta", "NOT_FOUND"),
    (400, "Invalid JSON payload received.", "INVALID_ARGUMENT"),
    (400, "User location is not supported for the API use.", "FAILED_PRECONDITION"),
    (403, "You do not have permission to access the File abc or it may not exist.", "PERMISSION_DENIED"),
])
def test_the_requests_own_faults_go_back_unretried(status: int, message: str, google: str) -> None:
    v = classify(status, orjson.dumps({"error": {"code": status, "message": message, "status": google}}), NOW)
    assert v.outcome is Outcome.CLIENT_ERROR and not v.retryable


def test_urls_never_carry_the_key() -> None:
    assert model_url(None, "gemini-2.5-pro", "streamGenerateContent", True) == \
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert model_url("http://127.0.0.1:9/v1beta/", "m", "generateContent") == "http://127.0.0.1:9/v1beta/models/m:generateContent"


# --- the 2025-2026 causes, read from the emulator's bodies (docs/gemini-wire-2026.md) -------------------

def _cause(cause: str, status: int = 429) -> bytes:
    from keymux.emulator.gemini_wire import SPEND_WINDOW_S, cause_body

    return orjson.dumps(cause_body(cause, SPEND_WINDOW_S if cause == "spendcap" else None))


def test_spend_cap_is_a_project_window_not_a_key_rate() -> None:
    v = classify(429, _cause("spendcap"), NOW)
    assert (v.outcome, v.cause, v.whole_project, v.retry_after, v.learned_limit) == (
        Outcome.RATE_LIMITED, "spend_cap", True, 600.0, None)
    assert "spend cap" in v.reason


def test_depleted_prepayment_is_billing_for_the_whole_project_as_429_or_402() -> None:
    for status in (429, 402):
        v = classify(status, _cause("prepay"), NOW)
        assert (v.outcome, v.cause, v.whole_project) == (Outcome.DAILY_EXHAUSTED, "prepay_depleted", True)
        assert v.until == NOW + 3600 and "billing" in v.reason


def test_tier_drop_and_detail_less_429s_back_off() -> None:
    v = classify(429, _cause("tierdrop"), NOW)
    assert (v.outcome, v.cause, v.whole_project) == (Outcome.BACKOFF, "tier_drop", False)
    bare = orjson.dumps({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                   "status": "RESOURCE_EXHAUSTED"}})
    assert classify(429, bare, NOW).cause == "no_details"
