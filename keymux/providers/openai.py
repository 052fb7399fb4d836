"""OpenAI and OpenAI-compatible upstreams: addressing, auth, and rate-limit signals."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import orjson

from keymux.providers import azure
from keymux.providers.base import OK, Addressed, Outcome, Verdict
from keymux.providers.durations import parse_go_duration, parse_retry_after, retry_in_message

DEFAULT_BASE = "https://api.openai.com/v1"
BILLING_PARK = 3600.0  # insufficient_quota is billing, not a window: look again in an hour


def chat_url(api_base: str | None) -> str:
    base = (api_base or DEFAULT_BASE).rstrip("/")
    return f"{base}/chat/completions"


def chat_address(dep: Addressed) -> tuple[str, dict[str, str]]:
    """URL and auth headers of a chat call: OpenAI's, or Azure's deployment URL and api-key (providers/azure.py)."""
    if dep.vendor in azure.KINDS and dep.api_base:
        return azure.chat_url(dep.vendor, dep.api_base, dep.model, dep.api_version), azure.auth_headers(dep.api_key)
    return chat_url(dep.api_base), auth_headers(dep.api_key)


def endpoint_url(api_base: str | None, path: str) -> str:
    """Any other endpoint under the same base: "embeddings", "images/generations", "audio/speech"..."""
    return f"{(api_base or DEFAULT_BASE).rstrip('/')}/{path}"


_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')


def answered(raw: bytes) -> bool:
    """A chat completion holds its choices."""
    return raw.find(b'"choices"') >= 0


def ends_stream(payload: bytes) -> bool:
    """The event that ends a chat stream: a choice's finish_reason (`[DONE]` alone ends nothing: an empty
    stream sends it too)."""
    return payload.find(b"finish_reason") >= 0 and _FINISHED.search(payload) is not None


@functools.lru_cache(maxsize=4096)
def auth_headers(api_key: str) -> dict[str, str]:
    if not api_key:  # a keyless OpenAI-compatible server (e.g. a local model server)
        return {"content-type": "application/json"}
    return {"authorization": f"Bearer {api_key}", "content-type": "application/json"}


def error_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(doc, list) and doc:  # Google's OpenAI-compatible endpoint wraps errors in an array
        doc = doc[0]
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return doc["error"]
    return {}


def _bare_error(body: bytes) -> dict[str, Any]:
    """Cerebras and Mistral answer errors as a top-level {message, type, code} object, not under "error"."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) and isinstance(doc.get("message"), str) else {}


def _header_delay(headers: Mapping[str, str], now: float) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"), now)


# Cerebras counts per minute and per day, in plain seconds ("11.38"), under their own header names.
_SECONDS_RESETS = ("x-ratelimit-reset-requests-minute", "x-ratelimit-reset-tokens-minute")


def _seconds(text: str | None) -> float | None:
    try:
        return max(0.0, float(text)) if text else None
    except ValueError:
        return None


def _reset_delay(headers: Mapping[str, str]) -> float | None:
    delays = [parse_go_duration(headers.get(h, "")) for h in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")]
    delays += [_seconds(headers.get(h)) for h in _SECONDS_RESETS]
    known = [d for d in delays if d is not None]
    return max(known) if known else None


def _day_spent(headers: Mapping[str, str], now: float) -> Verdict | None:
    """Cerebras: no requests left today (x-ratelimit-remaining-requests-day 0): out until its reset."""
    if headers.get("x-ratelimit-remaining-requests-day") != "0":
        return None
    delay = _seconds(headers.get("x-ratelimit-reset-requests-day"))
    return Verdict(Outcome.DAILY_EXHAUSTED, reason="no requests left today (upstream daily limit)",
                   until=now + (delay if delay is not None else BILLING_PARK))


def classify(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
    if status < 300:
        if headers.get("x-ratelimit-remaining-requests") == "0":
            delay = parse_go_duration(headers.get("x-ratelimit-reset-requests", ""))
            if delay:
                return Verdict(Outcome.OK, reason="no requests left in the upstream window", until=now + delay)
        return OK
    err = error_object(body) or _bare_error(body)
    message = str(err.get("message", ""))
    code = str(err.get("code") or err.get("type") or "")
    if status == 429:
        day = _day_spent(headers, now)
        if day is not None:
            return day
        if code == "insufficient_quota":
            return Verdict(Outcome.DAILY_EXHAUSTED, reason="insufficient quota (billing)", until=now + BILLING_PARK)
        delay = _header_delay(headers, now)
        if delay is None:
            delay = retry_in_message(message)
        if delay is None:
            delay = _reset_delay(headers)
        if delay is None:
            return Verdict(Outcome.BACKOFF, reason="429 without a retry delay")
        return Verdict(Outcome.RATE_LIMITED, reason=f"rate limited, upstream asked to wait {delay:.1f} s",
                       retry_after=delay)
    if status == 401 or code in ("invalid_api_key", "account_deactivated"):
        return Verdict(Outcome.INVALID_KEY, reason=f"key rejected ({code or status})")
    if status >= 500 or status == 408:
        return Verdict(Outcome.UPSTREAM_ERROR, reason=f"{status} {message[:80]}".strip())
    return Verdict(Outcome.CLIENT_ERROR, reason=f"{status} {message[:120]}")
