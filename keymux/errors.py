"""keymux's own failures, rendered by each surface in its client's error shape.

    KeymuxError (status, message)
    ├── BadRequest            400  malformed body, missing fields, unsupported params
    ├── Unauthorized          401  wrong or missing gateway key
    ├── Forbidden             403  admin API reached from another machine without a master key
    ├── NotFound              404  unknown model group / route
    ├── Conflict              409  admin: the key is already there / belongs to the config file
    ├── PayloadTooLarge       413
    ├── UnsupportedMediaType  415
    ├── ConfigRejected        422  a reload found the new config broken (the old one stays)
    ├── NoCapacity            429  no key can take the request in time (carries retry_after)
    ├── Unavailable           503  a service keymux needs (the ledger database) is down
    └── UpstreamFailed        the upstream's own answer, or 502/504 when every try failed

    StreamBroken   an error object inside a 200 stream (not a KeymuxError: attempt.py turns it into a verdict)

Upstream answers never raise: providers turn them into a `Verdict` (providers/base.py);
the relay raises `UpstreamFailed` only once it has given up.
"""

from __future__ import annotations


class KeymuxError(Exception):
    status = 500
    kind = "internal_error"  # OpenAI-style error type
    google_status = "INTERNAL"  # google.rpc status name

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(KeymuxError):
    status = 400
    kind = "invalid_request_error"
    google_status = "INVALID_ARGUMENT"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class Unauthorized(KeymuxError):
    status = 401
    kind = "authentication_error"
    google_status = "UNAUTHENTICATED"


class Forbidden(KeymuxError):
    status = 403
    kind = "permission_error"
    google_status = "PERMISSION_DENIED"


class NotFound(KeymuxError):
    status = 404
    kind = "not_found_error"
    google_status = "NOT_FOUND"


class Conflict(KeymuxError):
    status = 409
    kind = "invalid_request_error"
    google_status = "ALREADY_EXISTS"


class ConfigRejected(KeymuxError):
    status = 422
    kind = "invalid_request_error"
    google_status = "FAILED_PRECONDITION"


class Unavailable(KeymuxError):
    status = 503
    kind = "api_error"
    google_status = "UNAVAILABLE"


class PayloadTooLarge(KeymuxError):
    status = 413
    kind = "invalid_request_error"
    google_status = "INVALID_ARGUMENT"


class UnsupportedMediaType(KeymuxError):
    status = 415
    kind = "invalid_request_error"
    google_status = "INVALID_ARGUMENT"


class NoCapacity(KeymuxError):
    """No key can take the request before it would have to give up waiting."""

    status = 429
    kind = "rate_limit_error"
    google_status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamFailed(KeymuxError):
    """The relay gave up; `status` is the upstream's own status when it is the request's fault."""

    kind = "upstream_error"
    google_status = "UNAVAILABLE"

    def __init__(self, message: str, status: int = 502, body: bytes | None = None,
                 google_status: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        if google_status:
            self.google_status = google_status


class StreamBroken(Exception):
    """The upstream sent an error object inside a 200 stream (raised by the provider codecs)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
