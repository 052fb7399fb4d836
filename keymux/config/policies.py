"""LiteLLM's per-error-class policies: `router_settings.retry_policy`, `model_group_retry_policy` and
`allowed_fails_policy`, read into tables keyed by the class name (`RateLimitError`, ...).

An upstream failure's class comes from keymux's own verdict (`error_class`): the policies decide how many
attempts on other keys a class of failure gets and how many failures cool a deployment; they never change
what a verdict does to a key (a 429 still parks it for the delay asked, an invalid key is still disabled).
"""

from __future__ import annotations

from keymux.config.fields import Fields, join_path
from keymux.config.fields import show_value as sv
from keymux.providers.base import Outcome

RATE_LIMIT, AUTH, TIMEOUT, SERVER = "RateLimitError", "AuthenticationError", "TimeoutError", "InternalServerError"
BAD_REQUEST, CONTENT_POLICY, NOT_FOUND = "BadRequestError", "ContentPolicyViolationError", "NotFoundError"
# A request's own errors: keymux does not retry them unless a retry policy asks for it.
REQUEST_CLASSES = (BAD_REQUEST, CONTENT_POLICY, NOT_FOUND)
CLASSES = (RATE_LIMIT, AUTH, TIMEOUT, SERVER) + REQUEST_CLASSES
# allowed_fails_policy names LiteLLM accepts that keymux's verdicts do not act on, and why.
_FAILS_NO_EFFECT = {
    AUTH: "an invalid key is disabled at its first answer",
    BAD_REQUEST: "a request's own error never counts against a key",
    CONTENT_POLICY: "a request's own error never counts against a key",
    NOT_FOUND: "a request's own error never counts against a key",
    "ServiceUnavailableError": "5xx answers are counted as InternalServerError",
    "BadGatewayError": "5xx answers are counted as InternalServerError",
}

_BY_OUTCOME = {Outcome.RATE_LIMITED: RATE_LIMIT, Outcome.DAILY_EXHAUSTED: RATE_LIMIT, Outcome.BACKOFF: RATE_LIMIT,
               Outcome.INVALID_KEY: AUTH, Outcome.TIMEOUT: TIMEOUT, Outcome.UPSTREAM_ERROR: SERVER}
_CONTENT_POLICY_MARKS = (b"content_policy_violation", b"content_filter", b"responsibleaipolicyviolation",
                         b"content management policy")

RetryTable = dict[str, int]  # class -> further attempts in the group after a failure of that class


def error_class(outcome: Outcome, status: int, raw: bytes) -> str:
    """LiteLLM's exception class for an upstream failure, as keymux classified it."""
    cls = _BY_OUTCOME.get(outcome)
    if cls is not None:
        return cls
    if status == 404:
        return NOT_FOUND
    lowered = raw.lower()
    return CONTENT_POLICY if any(mark in lowered for mark in _CONTENT_POLICY_MARKS) else BAD_REQUEST


def retry_table(num_retries: int, policy: dict[str, int]) -> RetryTable:
    """Every class's retries: the policy's, else `num_retries` (0 for a request's own errors)."""
    table = {cls: 0 if cls in REQUEST_CLASSES else num_retries for cls in CLASSES}
    table.update(policy)
    return table


def parse_policy(value: object, path: str, f: Fields, suffix: str) -> dict[str, int]:
    """{`RateLimitErrorRetries`: 3, ...} -> {"RateLimitError": 3}; unknown names warn, null means not set."""
    out: dict[str, int] = {}
    section = f.mapping(value, path, what=f"a mapping of <ErrorClass>{suffix} to a count")
    extra = tuple(_FAILS_NO_EFFECT) if suffix == "AllowedFails" else ()
    for key, val in section.items():
        at = join_path(path, key)
        name = str(key)
        cls = name.removesuffix(suffix) if name.endswith(suffix) else ""
        if cls not in CLASSES and cls not in extra:
            f.warn(f"{at}: unknown error class, ignored (known: {', '.join(c + suffix for c in CLASSES)})")
            continue
        if val is None:
            continue
        count = f.integer(val, at)
        if suffix == "AllowedFails" and cls in _FAILS_NO_EFFECT:
            f.warn(f"{at}: accepted, no effect in keymux ({_FAILS_NO_EFFECT[cls]})")
            continue
        out[cls] = count
    return out


def parse_group_policies(value: object, path: str, f: Fields, groups: set[str]) -> dict[str, dict[str, int]]:
    """`model_group_retry_policy: {group: {<ErrorClass>Retries: n}}`: for that group, instead of retry_policy."""
    out: dict[str, dict[str, int]] = {}
    for group, policy in f.mapping(value, path, what="a mapping of model group to a retry policy").items():
        at = join_path(path, group)
        if group not in groups:
            f.warn(f"{at}: '{sv(group)}' is not a model group in model_list, ignored")
            continue
        out[str(group)] = parse_policy(policy, at, f, "Retries")
    return out


def describe_policy(policy: dict[str, int], suffix: str) -> str:
    return ", ".join(f"{cls}{suffix} {n}" for cls, n in policy.items())


__all__ = ["CLASSES", "RATE_LIMIT", "SERVER", "TIMEOUT", "REQUEST_CLASSES", "RetryTable", "describe_policy", "error_class",
           "parse_group_policies", "parse_policy", "retry_table"]
