"""Anthropic Messages upstreams: addressing, auth (x-api-key + anthropic-version), and what answers mean.

Classification (docs/anthropic-wire.md): 429 rate_limit_error parks the key until `retry-after` (or the
latest exhausted `anthropic-ratelimit-*-reset`), learning the requests-per-minute limit from its header;
529 overloaded_error is the model's trouble, not the key's (retried elsewhere, no failure counted against
the key); 401 authentication_error and 403 permission_error disable the key; a 400 "credit balance is too
low" is billing: the key is parked, shown as a billing state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from keymux.providers.base import OK, Outcome, Verdict
from keymux.providers.durations import parse_retry_after

DEFAULT_BASE = "https://api.anthropic.com"
VERSION = "2023-06-01"
BILLING_PARK = 3600.0  # credits are bought by a person: look again in an hour
OVERLOADED = "overloaded"  # Verdict.cause of a 529: the pool does not count it against the key
_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")
_STOPPED = re.compile(rb'"stop_reason"\s*:\s*"')


def messages_url(api_base: str | None) -> str:
    base = (api_base or DEFAULT_BASE).rstrip("/").removesuffix("/v1")
    return f"{base}/v1/messages"


@functools.lru_cache(maxsize=4096)
def auth_headers(api_key: str) -> dict[str, str]:
    return {"x-api-key": api_key, "anthropic-version": VERSION, "content-type": "application/json"}


def answered(raw: bytes) -> bool:
    """A message that ended with a stop reason (an answer cut short has none)."""
    return _STOPPED.search(raw) is not None


def ends_stream(payload: bytes) -> bool:
    return payload.find(b'"message_stop"') >= 0


def error_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return doc["error"]
    return {}


def _reset(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now)
    except ValueError:
        return None


def _exhausted_reset(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the latest reset among the limits with nothing remaining."""
    delays = [_reset(headers.get(f"anthropic-ratelimit-{name}-reset"), now) for name in _LIMITS
              if headers.get(f"anthropic-ratelimit-{name}-remaining") == "0"]
    known = [d for d in delays if d is not None]
    return max(known) if known else None


def _learned(headers: Mapping[str, str]) -> tuple[str, int] | None:
    limit = headers.get("anthropic-ratelimit-requests-limit")
    return ("rpm", int(limit)) if limit and limit.isdigit() else None


def classify(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
    if status < 300:
        if headers.get("anthropic-ratelimit-requests-remaining") == "0":
            delay = _exhausted_reset(headers, now)
            if delay:
                return Verdict(Outcome.OK, reason="no requests left in the upstream window", until=now + delay)
        return OK
    err = error_object(body)
    message = str(err.get("message", ""))
    kind = str(err.get("type", ""))
    if status == 429:
        delay = parse_retry_after(headers.get("retry-after"), now)
        if delay is None:
            delay = _exhausted_reset(headers, now)
        if delay is None:
            return Verdict(Outcome.BACKOFF, reason="429 rate_limit_error without a retry delay",
                           learned_limit=_learned(headers))
        return Verdict(Outcome.RATE_LIMITED, reason=f"rate limited, Anthropic asked to wait {delay:.0f} s",
                       retry_after=delay, learned_limit=_learned(headers))
    if status == 529 or kind == "overloaded_error":
        return Verdict(Outcome.UPSTREAM_ERROR, reason="529 overloaded_error: the model is overloaded",
                       cause=OVERLOADED)
    if status in (401, 403):
        return Verdict(Outcome.INVALID_KEY, reason=f"key rejected ({kind or status})")
    if status in (400, 402) and "credit balance" in message.lower():
        return Verdict(Outcome.DAILY_EXHAUSTED, cause="billing", whole_project=True, until=now + BILLING_PARK,
                       reason="credit balance too low: the account's billing, not a rate limit; buy credits "
                              "in the Anthropic console")
    if status >= 500 or status == 408:
        return Verdict(Outcome.UPSTREAM_ERROR, reason=f"{status} {message[:80]}".strip())
    return Verdict(Outcome.CLIENT_ERROR, reason=f"{status} {message[:120]}")
