"""What the relay needs from an upstream API, and the verdict on each answer.

A provider knows how to address and authenticate a call and how to read an
upstream answer into a `Verdict`. It never decides which key to use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Addressed(Protocol):
    """What addressing a call needs of a deployment (keymux.config.schema.DeploymentConfig has it)."""

    @property
    def api_base(self) -> str | None: ...
    @property
    def api_key(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def vendor(self) -> str | None: ...
    @property
    def api_version(self) -> str | None: ...


class Outcome(enum.Enum):
    # Members are singletons: hashed by identity in C, not by Enum's Python-level hash of the name (~850
    # instructions each time a member is a dict key or checked against a set, as on every request).
    __hash__ = object.__hash__

    OK = "ok"
    RATE_LIMITED = "rate_limited"  # per-minute quota / retry delay: park (bucket, model) until `until`
    DAILY_EXHAUSTED = "daily_exhausted"  # per-day quota: park (bucket, model) until Pacific midnight
    BACKOFF = "backoff"  # 429 without details: exponential backoff on (bucket, model)
    INVALID_KEY = "invalid_key"  # invalid / leaked / suspended / API disabled: disable the key
    UPSTREAM_ERROR = "upstream_error"  # 5xx, overload: retry elsewhere, count toward allowed_fails
    TIMEOUT = "timeout"  # same as UPSTREAM_ERROR, kept apart for metrics
    CLIENT_ERROR = "client_error"  # the request's fault: return as is, no retry, no blame


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""  # human readable, no secrets ("per-minute quota, Google asked to wait 26 s")
    retry_after: float | None = None  # seconds, from RetryInfo / retry-after headers
    until: float | None = None  # absolute clock time the key/model is out until, when known
    learned_limit: tuple[str, int] | None = None  # e.g. ("rpd", 20) read from a 429 body
    # Why a 429 came, when it is not a plain per-key rate: spend_cap | prepay_depleted | tier_drop | no_details.
    cause: str = ""
    whole_project: bool = False  # the cause is the key's project (billing, spend cap): park all its models

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def retryable(self) -> bool:
        return self.outcome not in (Outcome.OK, Outcome.CLIENT_ERROR)


OK = Verdict(Outcome.OK)  # frozen: one shared instance, not one built per answer
