"""Why a gateway key's request was refused, in words that say it is the client's own limit, not the pool.

    ClientLimited   429  the key's own rpm / tpm / rpd / max_parallel (Retry-After: when its window ends)
    BudgetSpent     429  the key's budget for this period is spent (says budget, spent, reset time)

Both are KeymuxErrors with `retry_after`, so every surface renders them in its API's shape with an honest
Retry-After (none for a `total` budget: it never resets).
"""

from __future__ import annotations

from keymux.errors import KeymuxError


class ClientLimited(KeymuxError):
    status = 429
    kind = "rate_limit_error"
    google_status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float | None, limit: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit  # rpm | tpm | rpd | max_parallel | budget


class BudgetSpent(ClientLimited):
    kind = "budget_exceeded"

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message, retry_after, "budget")
