"""The resolved, typed configuration the rest of keymux runs on.

`config/load.py` builds this from a LiteLLM-style YAML file; nothing else reads YAML.
Secrets (`api_key`, `master_key`) are kept out of `repr` so they never reach a log by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keymux.config.access import AccessSettings


@dataclass(frozen=True)
class Limits:
    """Declared limits of one deployment (or of the quota bucket it shares)."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None
    max_parallel: int | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.rpd, self.tpd, self.max_parallel))


@dataclass(frozen=True)
class DeploymentConfig:
    """One (group, provider, upstream model, key) — a LiteLLM `model_list` entry."""

    id: str  # model_info.id, else "<group>/<index in model_list>"
    group: str  # model_name: what clients ask for
    provider: str  # "gemini" | "openai" | "anthropic" | "vertex_ai"
    model: str  # upstream model id, provider prefix removed ("gemini-2.5-pro")
    api_key: str = field(repr=False)
    fingerprint: str = ""  # "gem:1a2b3c4d"
    api_base: str | None = field(default=None, repr=False)  # only ever from config; may embed credentials
    project: str | None = None  # keys with one project label share one quota bucket
    limits: Limits = Limits()
    weight: float = 1.0
    order: int | None = None  # lower first; None = no preference
    timeout: float | None = None  # per-attempt seconds; None = router timeout
    stream_timeout: float | None = None  # longest silence of a streamed attempt; None = `timeout`
    max_retries: int | None = None  # after a retryable failure here, at most this many further attempts
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    tier: str | None = None  # model_info.tier: "free" | "paid"; None: by provider (see keymux/pricing.py)
    # litellm_params.max_tokens, temperature, extra_headers, ...: defaults the client's own values override
    # (keymux/translate/defaults.py). Not in repr: extra headers may carry credentials.
    defaults: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    api_version: str | None = None  # azure/ and azure_ai/: the api-version query parameter
    vendor: str | None = None  # an OpenAI-compatible vendor served as "openai" ("groq"; config/compatible.py)
    vertex_project: str | None = None  # vertex_ai/: the Google Cloud project and region called (config/vertex.py)
    vertex_location: str | None = None

    @property
    def wildcard(self) -> bool:
        """A LiteLLM wildcard deployment (`gemini/*`): a template for the concrete models clients ask for."""
        return "*" in self.group or "*" in self.model

    @property
    def bucket(self) -> str:
        """What quota is counted against: the project when labelled, else the key itself."""
        return f"project:{self.project}" if self.project else self.fingerprint


@dataclass(frozen=True)
class RedisSettings:
    """Where shared key state (or the response cache) lives: `url`, or `host`/`port`/`password`."""

    url: str | None = field(default=None, repr=False)  # may embed a password
    host: str | None = None
    port: int = 6379
    password: str | None = field(default=None, repr=False)
    namespace: str = "keymux"  # key prefix, so several deployments can share one Redis
    fail_closed: bool = False  # Redis down: refuse (503) instead of running on local state

    def describe(self) -> str:
        if self.url:
            return "redis (url)"
        return f"redis {self.host}:{self.port}"


@dataclass(frozen=True)
class CacheSettings:
    """`litellm_settings.cache: true` with `cache_params`: exact-match response cache."""

    type: str = "local"  # "local" (this process, LRU bounded in bytes) | "redis" (shared by replicas)
    ttl: float = 600.0  # seconds
    namespace: str = "keymux"
    max_bytes: int = 64 * 1024 * 1024  # local cache only
    redis: RedisSettings | None = None  # type redis: where


@dataclass(frozen=True)
class RouterSettings:
    routing_strategy: str = "simple-shuffle"
    num_retries: int = 2  # further keys tried after the first, per group
    timeout: float = 300.0  # per upstream attempt
    allowed_fails: int = 3  # 5xx/timeouts on one deployment before it cools
    cooldown_time: float = 60.0  # seconds a deployment cools after allowed_fails
    retry_after: float = 0.0  # minimum seconds before a cooled deployment is tried again
    queue_timeout: float = 30.0  # seconds a request may wait for capacity
    # LiteLLM's per-error-class policies (config/policies.py), by class name ("RateLimitError"): retries after
    # a failure of that class, per group where model_group_retry_policy names it; failures that cool a deployment.
    retry_policy: dict[str, int] = field(default_factory=dict)
    model_group_retry_policy: dict[str, dict[str, int]] = field(default_factory=dict)
    allowed_fails_policy: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # alias -> model group (router_settings.model_group_alias, and keymux's top-level `aliases:` map), so that
    # e.g. Claude Code's default model ids reach a Gemini group without client changes
    model_group_alias: dict[str, str] = field(default_factory=dict)
    hidden_aliases: frozenset[str] = frozenset()  # aliases left out of model lists
    redis: RedisSettings | None = None  # shared key state for several replicas; None: in this process
    # Egress detection: when this share of a provider's keys (at least 2) get an unexplained 429 within
    # `egress_window` seconds, the limit is this host's IP, not the keys: back off the provider as a whole.
    egress_window: float = 10.0
    egress_share: float = 0.75


@dataclass(frozen=True)
class ServerLimits:
    """What one client connection may take from the server (general_settings; keymux/server.py)."""
    header_timeout: float = 10.0  # seconds from a connection's first byte to its whole request head
    body_timeout: float = 60.0  # seconds to receive a request body once its head is in
    keepalive_timeout: float = 30.0  # seconds an idle kept-alive connection stays open
    max_connections: int | None = None  # open client connections; None: 3/4 of the open-file limit


@dataclass(frozen=True)
class Config:
    deployments: tuple[DeploymentConfig, ...]
    router: RouterSettings = RouterSettings()
    drop_params: bool = False
    master_key: str | None = field(default=None, repr=False)
    verbose: bool = False
    database_url: str | None = field(default=None, repr=False)  # usage ledger; None: keymux.db beside the config
    metrics_auth: bool = True  # /metrics needs the master key
    access: AccessSettings = AccessSettings()  # unauthenticated admin, trusted proxies, admin api_base allow-list
    max_request_bytes: int = 20 * 1024 * 1024
    max_upstream_response_bytes: int = 64 * 1024 * 1024  # one upstream answer's body, streams included
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024  # one file uploaded through /upload/v1beta/files (Google: 2 GB)
    server: ServerLimits = ServerLimits()
    cache: CacheSettings | None = None  # None: no response cache
    virtual_keys: tuple[dict, ...] = field(default=(), repr=False)  # gateway keys from the file (config/clients.py)
    # Settings accepted from a LiteLLM config but not active yet ("litellm_settings.cache").
    inactive: tuple[str, ...] = ()
    # Unknown keys and other non-fatal findings, already phrased for a human.
    warnings: tuple[str, ...] = ()
    source: Path | None = None

    def groups(self) -> dict[str, list[DeploymentConfig]]:
        out: dict[str, list[DeploymentConfig]] = {}
        for d in self.deployments:
            out.setdefault(d.group, []).append(d)
        return out
