"""Vertex AI (Gemini models on Google Cloud): addressing, auth, and what its answers mean.

The bodies are Gemini's (providers/gemini.py reads them). What differs: the path names the project and the
region, the call carries an OAuth2 access token minted from a service account (providers/vertex_auth.py),
quota belongs to a project in a region, and Vertex words its 429s and 403s its own way.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from keymux.pacific import next_pacific_midnight
from keymux.providers import gemini
from keymux.providers.base import OK, Outcome, Verdict
from keymux.providers.durations import retry_in_message

DEFAULT_LOCATION = "us-central1"  # LiteLLM's default when neither vertex_location nor VERTEXAI_LOCATION is set
QUOTA_WINDOW = 60.0  # a per-minute project quota says no delay: the window turns within a minute
# "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model
# with base model: gemini-2.5-flash. Please submit a quota increase request. ..."
_PROJECT_QUOTA = re.compile(r"Quota exceeded for (aiplatform\.googleapis\.com/[A-Za-z0-9_]+)")
_SHARED_CAPACITY = ("resource exhausted. please try again later", "temporarily out of capacity")
_DISABLING_REASONS = {"IAM_PERMISSION_DENIED": "the service account may not call Vertex AI on this project",
                      "SERVICE_DISABLED": "Vertex AI API disabled on the project",
                      "BILLING_DISABLED": "billing disabled on the project",
                      "CONSUMER_SUSPENDED": "project suspended"}


def host(location: str, api_base: str | None = None) -> str:
    """`api_base` (a proxy, or an emulator in tests) replaces Google's host; the path stays Vertex's."""
    if api_base:
        return api_base.rstrip("/")
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def prefix(base: str, project: str, location: str) -> str:
    """What a deployment's model URLs start with (kept as its api_base)."""
    return f"{base}/v1/projects/{quote(project, safe='')}/locations/{quote(location, safe='')}/publishers/google"


def model_url(api_base: str | None, model: str, method: str, stream: bool = False) -> str:
    url = f"{api_base}/models/{quote(model, safe='')}:{method}"
    return url + "?alt=sse" if stream else url


def auth_headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


def classify(status: int, body: bytes, now: float) -> Verdict:
    if status < 300:
        return OK
    err = gemini.error_object(body)
    message = str(err.get("message", ""))
    if status == 429:
        quota = _PROJECT_QUOTA.search(message)
        if quota is not None:
            metric = quota.group(1)
            if "per_day" in metric:
                return Verdict(Outcome.DAILY_EXHAUSTED, reason=f"project's daily quota ({metric}), back at 00:00 PT",
                               until=next_pacific_midnight(now))
            delay = retry_in_message(message) or QUOTA_WINDOW
            return Verdict(Outcome.RATE_LIMITED, retry_after=delay, reason=f"project's per-minute quota ({metric})")
        if any(text in message.lower() for text in _SHARED_CAPACITY):
            # Dynamic shared quota: Google's capacity in the region is taken, not this project's quota.
            return Verdict(Outcome.BACKOFF, reason="Vertex shared capacity exhausted in the region "
                                                   "(dynamic shared quota): backing off this project and model")
    if status == 401:  # the token was refused (expired early, revoked): attempt.py drops it, the next is minted
        return Verdict(Outcome.UPSTREAM_ERROR, reason="access token refused (401 UNAUTHENTICATED); a new one "
                                                      "will be minted")
    if status == 403:
        reasons = {str(d.get("reason")) for d in err.get("details") or () if isinstance(d, dict)}
        for reason, text in _DISABLING_REASONS.items():
            if reason in reasons:
                return Verdict(Outcome.INVALID_KEY, reason=text)
        if "aiplatform.endpoints.predict" in message:
            return Verdict(Outcome.INVALID_KEY, reason=_DISABLING_REASONS["IAM_PERMISSION_DENIED"])
    return gemini.classify(status, body, now)


__all__ = ["DEFAULT_LOCATION", "auth_headers", "classify", "host", "model_url", "prefix"]
