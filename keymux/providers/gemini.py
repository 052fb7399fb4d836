"""Google AI Studio (Gemini native REST): addressing, auth, and reading answers into verdicts.

Classification follows reference/gemini-wire.md: the retry delay lives only in the body, a
per-day quota still carries a short RetryInfo (so quotaId decides), and invalid / leaked /
suspended keys disable the key after one answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import orjson

from keymux.pacific import next_pacific_midnight
from keymux.providers.base import OK, Outcome, Verdict
from keymux.providers.durations import parse_go_duration, retry_in_message

DEFAULT_BASE = "https://generativelanguage.googleapis.com"
_LIMIT_IN_MESSAGE = re.compile(r"limit: (\d+)")
BILLING_RECHECK = 3600.0  # depleted credits do not come back on their own: try the project again hourly
SPEND_WINDOW = 600.0  # spend caps are evaluated over a rolling 10-minute window
_TIER_DROP = re.compile(r"tier (was|has been) (lowered|dropped|downgraded)|tier drop", re.IGNORECASE)
_DISABLING_REASONS = {"API_KEY_INVALID": "invalid key", "CONSUMER_SUSPENDED": "key suspended",
                      "SERVICE_DISABLED": "Generative Language API disabled on the key's project",
                      "API_KEY_SERVICE_BLOCKED": "key blocked for this API"}


def base_url(api_base: str | None) -> str:
    base = (api_base or DEFAULT_BASE).rstrip("/")
    return base if base.endswith(("/v1beta", "/v1", "/v1alpha")) else base + "/v1beta"


def model_url(api_base: str | None, model: str, method: str, stream: bool = False) -> str:
    url = f"{base_url(api_base)}/models/{model}:{method}"
    return url + "?alt=sse" if stream else url


def answered(raw: bytes) -> bool:
    """A generateContent answer holds candidates, or says why it has none (a blocked prompt)."""
    return raw.find(b'"candidates"') >= 0 or raw.find(b'"promptFeedback"') >= 0


def ends_stream(payload: bytes) -> bool:
    """The stream event that ends an answer: it carries the finish (or block) reason."""
    return payload.find(b'"finishReason"') >= 0 or payload.find(b'"blockReason"') >= 0


@functools.lru_cache(maxsize=4096)
def auth_headers(api_key: str) -> dict[str, str]:
    """Built once per key (aiohttp copies the mapping, never changes it)."""
    return {"x-goog-api-key": api_key, "content-type": "application/json"}


def error_object(body: bytes) -> dict[str, Any]:
    """The google.rpc.Status inside an error body, plain or wrapped in a one-element array."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return doc["error"]
    return {}


def _details(err: Mapping[str, Any], suffix: str) -> list[dict[str, Any]]:
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(suffix)]


def _fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def classify(status: int, body: bytes, now: float) -> Verdict:
    if status < 300:
        return OK
    err = error_object(body)
    message = str(err.get("message", ""))
    if status in (402, 429) and "credits are depleted" in message:
        return Verdict(Outcome.DAILY_EXHAUSTED, cause="prepay_depleted", whole_project=True,
                       reason="prepayment credits depleted: the project's billing, not a rate limit; "
                              "add credits in AI Studio", until=now + BILLING_RECHECK)
    if status == 429:
        return _classify_quota(err, message, now)
    reasons = {str(d.get("reason")) for d in _details(err, "google.rpc.ErrorInfo")}
    lowered = message.lower()
    if status in (400, 401, 403):
        for reason, text in _DISABLING_REASONS.items():
            if reason in reasons:
                return Verdict(Outcome.INVALID_KEY, reason=text)
        if "api key not valid" in lowered or "api key not found" in lowered or "api key expired" in lowered:
            return Verdict(Outcome.INVALID_KEY, reason="invalid key")
        if "reported as leaked" in lowered:
            return Verdict(Outcome.INVALID_KEY, reason="key reported as leaked")
        if "has been suspended" in lowered:
            return Verdict(Outcome.INVALID_KEY, reason="key suspended")
        if status == 401:
            return Verdict(Outcome.INVALID_KEY, reason="key not accepted (401)")
    if status >= 500 or status == 408:
        return Verdict(Outcome.UPSTREAM_ERROR, reason=f"{status} {err.get('status') or ''} {message[:80]}".strip())
    return Verdict(Outcome.CLIENT_ERROR, reason=f"{status} {message[:120]}")


def _classify_quota(err: Mapping[str, Any], message: str, now: float) -> Verdict:
    delay: float | None = None
    for info in _details(err, "google.rpc.RetryInfo"):
        delay = parse_go_duration(str(info.get("retryDelay", "")))
    if delay is None:
        delay = retry_in_message(message)
    daily: list[tuple[str, int | None]] = []
    minute: list[tuple[str, int | None]] = []
    for failure in _details(err, "google.rpc.QuotaFailure"):
        for v in failure.get("violations") or ():
            if not isinstance(v, dict):
                continue
            quota_id = str(v.get("quotaId", ""))
            value = v.get("quotaValue")
            limit = int(value) if isinstance(value, (str, int)) and str(value).isdigit() else None
            (daily if "PerDay" in quota_id else minute).append((quota_id, limit))
    lowered = message.lower()
    if _TIER_DROP.search(message):
        return Verdict(Outcome.BACKOFF, cause="tier_drop", retry_after=delay,
                       reason="the project's usage tier was lowered by Google: lower limits apply (see AI Studio)")
    if "spend-based" in lowered or "spend cap" in lowered:
        wait = delay if delay is not None else SPEND_WINDOW
        return Verdict(Outcome.RATE_LIMITED, cause="spend_cap", whole_project=True, retry_after=wait,
                       reason=f"spend cap of the project's billing tier reached (rolling 10-minute window); "
                              f"back in {_fmt_seconds(wait)}")
    m = _LIMIT_IN_MESSAGE.search(message)
    zero = m is not None and m.group(1) == "0" or any(limit == 0 for _, limit in daily + minute)
    if daily or zero:
        quota_id, limit = daily[0] if daily else ("", 0)
        what = "no free quota for this model" if zero else f"daily quota{'' if limit is None else f' ({limit}/day)'}"
        learned = None
        if limit:
            learned = ("tpd" if "Token" in quota_id else "rpd", limit)
        return Verdict(Outcome.DAILY_EXHAUSTED, reason=f"{what}, back at 00:00 PT",
                       until=next_pacific_midnight(now), learned_limit=learned, retry_after=delay)
    if minute or delay is not None:
        learned = None
        if minute:
            quota_id, limit = minute[0]
            if limit:
                learned = ("tpm" if "Token" in quota_id else "rpm", limit)
        asked = f"Google asked to wait {_fmt_seconds(delay)}" if delay is not None else "no delay given"
        return Verdict(Outcome.RATE_LIMITED, reason=f"per-minute quota, {asked}", retry_after=delay,
                       learned_limit=learned)
    if not err.get("details"):
        return Verdict(Outcome.BACKOFF, cause="no_details",
                       reason="429 without details: Google gave no cause (often an account or IP throttle)")
    return Verdict(Outcome.BACKOFF, reason="429 without quota details")
