"""Vertex AI answers -> verdicts, on the bodies Vertex sends (its 429s name a project quota or the region's
shared capacity; its 403s are IAM's), and Vertex's addresses."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from keymux.pool.limits import next_pacific_midnight
from keymux.providers.base import Outcome
from keymux.providers.vertex import classify, host, model_url, prefix

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC).timestamp()


def status(code: int, name: str, message: str, details: list | None = None, wrap: bool = False) -> bytes:
    err: dict = {"code": code, "message": message, "status": name}
    if details is not None:
        err["details"] = details
    return orjson.dumps([{"error": err}] if wrap else {"error": err})


def quota(metric: str) -> bytes:
    return status(429, "RESOURCE_EXHAUSTED", f"Quota exceeded for aiplatform.googleapis.com/{metric} with base "
                  "model: gemini-2.5-flash. Please submit a quota increase request. "
                  "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.")


def test_a_per_minute_project_quota_parks_the_project_for_the_window() -> None:
    v = classify(429, quota("generate_content_requests_per_minute_per_project_per_base_model"), NOW)
    assert v.outcome is Outcome.RATE_LIMITED and v.retry_after == 60.0
    assert "project's per-minute quota" in v.reason and not v.whole_project


def test_a_per_day_project_quota_parks_until_pacific_midnight() -> None:
    v = classify(429, quota("generate_content_requests_per_day_per_project_per_base_model"), NOW)
    assert v.outcome is Outcome.DAILY_EXHAUSTED and v.until == next_pacific_midnight(NOW)


@pytest.mark.parametrize("message", [
    "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
    "Unable to submit request because the service is temporarily out of capacity. Try again later."])
def test_the_regions_shared_capacity_is_a_backoff_not_an_egress_or_key_fault(message: str) -> None:
    v = classify(429, status(429, "RESOURCE_EXHAUSTED", message, wrap=True), NOW)  # Vertex wraps it in an array
    assert v.outcome is Outcome.BACKOFF and "shared capacity" in v.reason
    assert v.cause == ""  # not "no_details": the egress detector does not read it as this host's IP


def test_a_bare_429_is_googles_detail_less_backoff() -> None:
    v = classify(429, status(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."), NOW)
    assert v.outcome is Outcome.BACKOFF and v.cause == "no_details"


def test_a_refused_token_is_retried_elsewhere_not_a_disabled_key() -> None:
    v = classify(401, status(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), NOW)
    assert v.outcome is Outcome.UPSTREAM_ERROR and "new one will be minted" in v.reason


@pytest.mark.parametrize("reason,text", [("IAM_PERMISSION_DENIED", "may not call Vertex AI"),
                                         ("SERVICE_DISABLED", "Vertex AI API disabled"),
                                         ("BILLING_DISABLED", "billing disabled")])
def test_a_project_or_account_that_cannot_call_vertex_is_disabled(reason: str, text: str) -> None:
    body = status(403, "PERMISSION_DENIED", "Permission denied.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}])
    v = classify(403, body, NOW)
    assert v.outcome is Outcome.INVALID_KEY and text in v.reason


def test_iam_denial_without_details_is_read_from_the_message() -> None:
    body = status(403, "PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied on resource "
                  "'//aiplatform.googleapis.com/projects/p/locations/us-central1/publishers/google/models/m'")
    assert classify(403, body, NOW).outcome is Outcome.INVALID_KEY


def test_an_unknown_model_is_the_requests_fault() -> None:
    body = status(404, "NOT_FOUND", "Publisher Model `projects/p/locations/us-central1/publishers/google/models/x` "
                  "was not found or your project does not have access to it.")
    v = classify(404, body, NOW)
    assert v.outcome is Outcome.CLIENT_ERROR and not v.retryable


def test_overload_is_retried_elsewhere() -> None:
    assert classify(503, status(503, "UNAVAILABLE", "The model is overloaded."), NOW).outcome is Outcome.UPSTREAM_ERROR


@pytest.mark.parametrize("location,expected", [
    ("us-central1", "https://us-central1-aiplatform.googleapis.com"),
    ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
    ("global", "https://aiplatform.googleapis.com")])
def test_the_host_is_the_regions_or_the_global_endpoint(location: str, expected: str) -> None:
    assert host(location) == expected
    assert host(location, "http://127.0.0.1:9/") == "http://127.0.0.1:9"  # api_base replaces the host only


def test_model_urls_name_project_region_model_and_method() -> None:
    base = prefix(host("us-east1"), "my-proj", "us-east1")
    assert model_url(base, "gemini-2.5-flash", "generateContent") == (
        "https://us-east1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east1/publishers/google/"
        "models/gemini-2.5-flash:generateContent")
    assert model_url(base, "gemini-2.5-flash", "streamGenerateContent", True).endswith(
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
