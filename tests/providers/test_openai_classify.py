"""OpenAI answers and rate-limit headers -> verdicts."""

from __future__ import annotations

import orjson
import pytest

from keymux.providers.base import Outcome
from keymux.providers.durations import parse_go_duration
from keymux.providers.openai import classify

NOW = 1_800_000_000.0
RATE = orjson.dumps({"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min "
                                          "(RPM): Limit 3, Used 3, Requested 1. Please try again in 18.642s.",
                               "type": "requests", "param": None, "code": "rate_limit_exceeded"}})


def test_retry_after_ms_wins_over_retry_after() -> None:
    v = classify(429, {"retry-after-ms": "1500", "retry-after": "2"}, RATE, NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == 1.5


def test_retry_after_seconds_header() -> None:
    assert classify(429, {"retry-after": "20"}, RATE, NOW).retry_after == 20.0


def test_delay_from_the_message_when_no_header() -> None:
    assert classify(429, {}, RATE, NOW).retry_after == pytest.approx(18.642)


def test_insufficient_quota_is_billing_not_a_window() -> None:
    body = orjson.dumps({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                   "param": None, "code": "insufficient_quota"}})
    v = classify(429, {}, body, NOW)
    assert v.outcome is Outcome.DAILY_EXHAUSTED and v.until == NOW + 3600


def test_no_requests_left_on_a_success_parks_until_the_reset() -> None:
    v = classify(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, b"{}", NOW)
    assert v.ok and v.until == NOW + 360


def test_invalid_key() -> None:
    body = orjson.dumps({"error": {"message": "Incorrect API key provided: sk-abc***xyz.", "type": "invalid_request_error",
                                   "param": None, "code": "invalid_api_key"}})
    assert classify(401, {}, body, NOW).outcome is Outcome.INVALID_KEY


@pytest.mark.parametrize("text,seconds", [("1s", 1), ("6m0s", 360), ("12ms", 0.012), ("1h2m3.5s", 3723.5),
                                          ("26.123456s", 26.123456)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_not_a_duration() -> None:
    assert parse_go_duration("soon") is None and parse_go_duration("") is None
