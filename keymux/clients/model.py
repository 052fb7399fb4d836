"""A gateway client: who it is, what it may use, how fast and how much.

    name           the identity (ledger `client` column, metrics label); stays the same across rotation
    secret_hash    SHA-256 of the key (keymux/clients/secrets.py); the key itself is never kept
    models         model groups it may use (empty: every group)
    rpm/tpm/rpd    requests per minute, tokens per minute, requests per day (in `timezone`)
    max_parallel   requests in flight at once
    budget         USD per period (day | week | month | total), reset in `timezone`; refuses once spent
    soft_budget    USD per the same period: only alerts (log line, metric, admin API flag)
    expires        epoch seconds; None: never
    admin          "" (none) | "read": may read /admin and /metrics (a dashboard key)
    source         "admin" (stored in the ledger database) | "config" (general_settings.virtual_keys)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from keymux.clients.periods import PERIODS, zone
from keymux.errors import BadRequest

RESERVED = ("master", "open")  # identities keymux already writes into the ledger
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BUDGET = re.compile(r"^\$?(\d+(?:\.\d+)?)\s*/\s*(day|week|month|total)$")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w|mo)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 30 * 86400}
LIMIT_FIELDS = ("rpm", "tpm", "rpd", "max_parallel")


@dataclass(frozen=True)
class Budget:
    usd: float
    period: str  # day | week | month | total

    def __str__(self) -> str:
        return f"${self.usd:.2f}/{self.period}"


@dataclass(frozen=True)
class GatewayClient:
    name: str
    secret_hash: str = field(repr=False)
    fingerprint: str
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_parallel: int | None = None
    budget: Budget | None = None
    soft_budget: float | None = None
    timezone: str = "UTC"
    expires: float | None = None
    disabled: bool = False
    admin: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    source: str = "admin"

    def allows(self, group: str) -> bool:
        return not self.models or group in self.models

    def unusable(self, now: float) -> str | None:
        """Why this key cannot be used now (for a 401), or None."""
        if self.disabled:
            return f"gateway key '{self.name}' is disabled"
        if self.expires is not None and now >= self.expires:
            return f"gateway key '{self.name}' expired at {iso(self.expires)}"
        return None

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but the hash."""
        return {"name": self.name, "fingerprint": self.fingerprint, "models": list(self.models),
                "rpm": self.rpm, "tpm": self.tpm, "rpd": self.rpd, "max_parallel": self.max_parallel,
                "budget": None if self.budget is None else {"usd": self.budget.usd, "period": self.budget.period},
                "soft_budget": self.soft_budget, "timezone": self.timezone,
                "expires": self.expires, "disabled": self.disabled, "admin": self.admin or None,
                "metadata": self.metadata, "created": self.created, "source": self.source}

    def stored(self) -> dict[str, Any]:
        """What the ledger database keeps (the hash, never the key)."""
        return {**self.public(), "secret_hash": self.secret_hash}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise BadRequest(f"`{name}` must be a whole number of at least 1, got {value!r}", param=name)
    return int(value)


def _usd(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BadRequest(f"`{name}` must be an amount in USD (a number >= 0), got {value!r}", param=name)
    return float(value)


def parse_budget(value: Any, name: str = "budget") -> Budget | None:
    """`2/day`, `$5/month`, `{"usd": 2, "period": "day"}`; None: no budget."""
    if value is None:
        return None
    if isinstance(value, str):
        m = _BUDGET.match(value.strip().lower())
        if not m:
            raise BadRequest(f"`{name}` must look like 2/day, 5.50/week, 20/month or 100/total; got {value!r}",
                             param=name)
        return Budget(float(m.group(1)), m.group(2))
    if isinstance(value, dict):
        usd = _usd(value.get("usd"), f"{name}.usd")
        period = value.get("period", "total")
        if usd is None or period not in PERIODS:
            raise BadRequest(f"`{name}` needs `usd` (a number) and `period` (one of {', '.join(PERIODS)})",
                             param=name)
        return Budget(usd, period)
    raise BadRequest(f"`{name}` must be a string like 2/day or an object {{usd, period}}", param=name)


def parse_duration(value: str, name: str) -> float:
    """LiteLLM's durations: 30s, 10m, 12h, 7d, 1w, 1mo -> seconds."""
    m = _DURATION.match(value.strip().lower())
    if not m:
        raise BadRequest(f"`{name}` must be a duration like 30m, 12h, 7d or 1mo; got {value!r}", param=name)
    return int(m.group(1)) * _SECONDS[m.group(2)]


def parse_expires(value: Any, now: float, name: str = "expires") -> float | None:
    """Epoch seconds, ISO 8601, or a duration from now (`30d`)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if _DURATION.match(value.strip().lower()):
            return now + parse_duration(value, name)
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"`{name}` must be epoch seconds, ISO 8601 or a duration like 30d; got {value!r}",
                             param=name) from None
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    raise BadRequest(f"`{name}` must be epoch seconds, ISO 8601 or a duration like 30d", param=name)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED:
        raise BadRequest("`name` must be 1-64 letters, digits, '.', '_' or '-' (not 'master' or 'open'), "
                         f"got {name!r}", param="name")
    return name


_SETTABLE = ("models", *LIMIT_FIELDS, "budget", "soft_budget", "timezone", "expires", "disabled", "admin",
             "metadata")


def apply(client: GatewayClient, doc: dict[str, Any], now: float) -> GatewayClient:
    """`client` with the fields `doc` sets (admin API / config spelling), each validated by name."""
    unknown = sorted(set(doc) - set(_SETTABLE) - {"name", "key"})
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; settable: {', '.join(_SETTABLE)}",
                         param=unknown[0])
    changes: dict[str, Any] = {}
    if "models" in doc:
        models = doc["models"]
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise BadRequest("`models` must be a list of model group names", param="models")
        changes["models"] = tuple(models)
    for name in LIMIT_FIELDS:
        if name in doc:
            changes[name] = _count(doc[name], name)
    if "budget" in doc:
        changes["budget"] = parse_budget(doc["budget"])
    if "soft_budget" in doc:
        changes["soft_budget"] = _usd(doc["soft_budget"], "soft_budget")
    if "timezone" in doc:
        try:
            zone(str(doc["timezone"]))
        except ValueError as e:
            raise BadRequest(str(e), param="timezone") from None
        changes["timezone"] = str(doc["timezone"])
    if "expires" in doc:
        changes["expires"] = parse_expires(doc["expires"], now)
    if "disabled" in doc:
        if not isinstance(doc["disabled"], bool):
            raise BadRequest("`disabled` must be true or false", param="disabled")
        changes["disabled"] = doc["disabled"]
    if "admin" in doc:
        if doc["admin"] not in (None, "", "read"):
            raise BadRequest("`admin` must be \"read\" (a read-only dashboard key) or null", param="admin")
        changes["admin"] = doc["admin"] or ""
    if "metadata" in doc:
        if not isinstance(doc["metadata"], dict):
            raise BadRequest("`metadata` must be an object", param="metadata")
        changes["metadata"] = doc["metadata"]
    return replace(client, **changes)


def from_stored(doc: dict[str, Any]) -> GatewayClient:
    budget = doc.get("budget")
    return GatewayClient(
        name=doc["name"], secret_hash=doc["secret_hash"], fingerprint=doc["fingerprint"],
        models=tuple(doc.get("models") or ()), rpm=doc.get("rpm"), tpm=doc.get("tpm"), rpd=doc.get("rpd"),
        max_parallel=doc.get("max_parallel"),
        budget=Budget(budget["usd"], budget["period"]) if budget else None, soft_budget=doc.get("soft_budget"),
        timezone=doc.get("timezone") or "UTC", expires=doc.get("expires"), disabled=bool(doc.get("disabled")),
        admin=doc.get("admin") or "", metadata=doc.get("metadata") or {}, created=doc.get("created") or 0.0,
        source=doc.get("source") or "admin")


_LITELLM_NAMES = {"key_alias": "name", "rpm_limit": "rpm", "tpm_limit": "tpm", "max_parallel_requests": "max_parallel",
                  "blocked": "disabled", "duration": "expires"}
_DURATION_PERIODS = {"1d": "day", "24h": "day", "7d": "week", "1w": "week", "30d": "month", "1mo": "month"}
LITELLM_IGNORED = ("user_id", "team_id", "tags", "aliases", "config", "permissions", "guardrails", "allowed_cache_controls",
                   "model_max_budget", "model_rpm_limit", "model_tpm_limit", "send_invite_email", "key_type",
                   "allowed_routes", "spend", "budget_id", "organization_id", "object_permission")


def from_litellm(doc: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's /key/generate fields (`rpm_limit`, `max_budget` + `budget_duration`, `duration`, ...) in
    keymux's spelling; keymux's own names pass as they are, fields keymux has no use for are dropped."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if k in LITELLM_IGNORED or k in ("max_budget", "budget_duration"):
            continue
        out[_LITELLM_NAMES.get(k, k)] = v
    if doc.get("max_budget") is not None:
        duration = doc.get("budget_duration")
        period = "total" if duration is None else _DURATION_PERIODS.get(str(duration).strip().lower())
        if period is None:
            raise BadRequest(f"`budget_duration` {duration!r}: keymux budgets reset per calendar day, week or "
                             f"month; use one of {', '.join(_DURATION_PERIODS)} (or none for a total budget)",
                             param="budget_duration")
        out["budget"] = {"usd": _usd(doc["max_budget"], "max_budget"), "period": period}
    return out
