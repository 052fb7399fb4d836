"""Rate-limit answers of OpenAI-compatible vendors, as they send them (bodies and headers recorded from
their documentation and real answers), read into the verdicts the pool acts on."""

from __future__ import annotations

import orjson
import pytest

from keymux.providers.base import Outcome
from keymux.providers.openai import classify

NOW = 1_000_000.0

GROQ_429 = orjson.dumps({"error": {
    "message": "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01hx` service tier "
               "`on_demand` on tokens per minute (TPM): Limit 6000, Used 5916, Requested 245. Please try again in "
               "1.61s. Visit https://console.groq.com/docs/rate-limits for more information.",
    "type": "tokens", "code": "rate_limit_exceeded"}})
CEREBRAS_429 = orjson.dumps({"message": "Requests per minute limit exceeded - too many requests sent.",
                             "type": "too_many_requests_error", "param": "quota", "code": "request_quota_exceeded"})
MISTRAL_429 = orjson.dumps({"object": "error", "message": "Requests rate limit exceeded", "type": "rate_limited",
                            "param": None, "code": "1300"})


def test_groq_429_waits_its_retry_after() -> None:
    headers = {"retry-after": "2", "x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-reset-tokens": "1.61s"}
    v = classify(429, headers, GROQ_429, NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == 2


def test_groq_429_without_retry_after_reads_the_message() -> None:
    v = classify(429, {}, GROQ_429, NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == pytest.approx(1.61)


def test_cerebras_minute_limit_uses_its_seconds_headers() -> None:
    headers = {"x-ratelimit-limit-requests-day": "14400", "x-ratelimit-remaining-requests-day": "14000",
               "x-ratelimit-reset-requests-day": "33011.38", "x-ratelimit-limit-tokens-minute": "60000",
               "x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "11.38"}
    v = classify(429, headers, CEREBRAS_429, NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == pytest.approx(11.38)


def test_cerebras_day_spent_parks_until_its_daily_reset() -> None:
    headers = {"x-ratelimit-remaining-requests-day": "0", "x-ratelimit-reset-requests-day": "33011.38",
               "x-ratelimit-reset-tokens-minute": "11.38"}
    v = classify(429, headers, CEREBRAS_429, NOW)
    assert v.outcome is Outcome.DAILY_EXHAUSTED and v.until == pytest.approx(NOW + 33011.38)


def test_mistral_429_without_delay_backs_off_and_a_bare_error_body_is_read() -> None:
    assert classify(429, {}, MISTRAL_429, NOW).outcome is Outcome.BACKOFF
    v = classify(400, {}, orjson.dumps({"object": "error", "message": "Invalid model: mistral-hugh",
                                         "type": "invalid_model", "code": "1500"}), NOW)
    assert v.outcome is Outcome.CLIENT_ERROR and "Invalid model" in v.reason
