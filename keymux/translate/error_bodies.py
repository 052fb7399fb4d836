"""Error bodies in each client API's own shape."""

from __future__ import annotations

import orjson

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 413: "invalid_request_error", 415: "invalid_request_error",
                 429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "api_error", 504: "timeout"}
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
                  500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def openai_error(status: int, message: str, *, kind: str | None = None, code: str | int | None = None,
                 param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind or _OPENAI_TYPES.get(status, "api_error"),
                                   "param": param, "code": code if code is not None else str(status)}})


def gemini_error(status: int, message: str, *, google_status: str | None = None) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message,
                                   "status": google_status or _GOOGLE_STATUS.get(status, "UNKNOWN")}})


# Anthropic's error types by status (docs.anthropic.com/en/api/errors); 529 is its "overloaded".
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    415: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 502: "api_error",
                    503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}


def anthropic_error(status: int, message: str, *, kind: str | None = None) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind or _ANTHROPIC_TYPES.get(status, "api_error"),
                                                    "message": message}})
