"""Parsing the several ways upstreams say "wait this long"."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_RETRY_IN = re.compile(r"(?:retry|try again) in (\d+(?:\.\d+)?)\s*(ms|s|seconds?)?", re.IGNORECASE)


def parse_go_duration(text: str) -> float | None:
    """'26s', '26.5s', '6m0s', '12ms', '1h2m3s' -> seconds (Google's retryDelay and OpenAI's reset headers)."""
    text = text.strip()
    pos, total = 0, 0.0
    for m in _GO_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """HTTP Retry-After: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_in_message(message: str) -> float | None:
    """'Please retry in 51.606482386s.' / 'Please try again in 18.642s.' / '... in 20ms.'"""
    m = _RETRY_IN.search(message)
    if m is None:
        return None
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value
