"""The one request pipeline every surface uses.

resolve group -> acquire a key (waiting in the pool's queue if needed) -> one attempt ->
on a retryable verdict, a different key (never one that already failed for this request),
up to `num_retries`, then the `fallbacks` groups -> the answer, or an honest error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from keymux.attempt import Failure, Reply, StreamReply, attempt
from keymux.cache import ResponseCache, strip_controls
from keymux.clock import Clock
from keymux.config.schema import Config
from keymux.errors import NoCapacity, UpstreamFailed
from keymux.exchange import Exchange, Usage, make_exchange
from keymux.logsetup import access
from keymux.pool import Pool
from keymux.providers.base import Outcome, Verdict
from keymux.upstream import Client

log = logging.getLogger("keymux.relay")

_ABANDONED = Verdict(Outcome.CLIENT_ERROR, reason="attempt abandoned")  # frees the key, blames nobody
_CONTEXT_OVERFLOW = ("context_length_exceeded", "maximum context length", "exceeds the maximum number of tokens",
                     "input token count", "too many tokens")


@dataclass(slots=True)
class Call:
    """A client request, parsed just enough to route it."""

    surface: str  # "openai" | "gemini"
    group: str  # resolved model group
    model: str  # the name the client asked for
    body: dict[str, Any]
    raw: bytes
    stream: bool
    request_id: str
    include_usage: bool = False
    method: str = "generateContent"  # Gemini method, for Gemini clients
    metered: bool = True  # False: counts against no quota window (countTokens)
    client: str = "open"  # who asked: a fingerprint of the gateway key they used, never the key
    cache_control: str = ""  # the client's Cache-Control header (no-cache / no-store)
    # Filled in as the request goes: what was tried, and how it ended.
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (key fingerprint, outcome)
    usage: Usage | None = None
    started: float = field(default_factory=time.perf_counter)
    at: float = 0.0  # clock time the relay took the request
    key: str | None = None  # fingerprint of the key that answered
    upstream_model: str | None = None
    status: int = 0
    outcome: str = ""  # ok | client_error | refused | failed | broken (stream died after its first byte) | cache_hit
    cache_hit: bool = False  # answered from the response cache: no key, no quota, no upstream call
    detail: str = ""  # why, for anything but ok
    ttfb: float | None = None  # seconds to the first byte we could send
    queue_wait: float = 0.0  # clock seconds spent waiting in the pool's queue for a key (all attempts)
    latency: float | None = None
    finished: bool = False


RequestObserver = Callable[[Call], None]  # told once per request, when it has ended; must not block


class Relay:
    def __init__(self, config: Config, pool: Pool, client: Client, clock: Clock,
                 observers: list[RequestObserver] | None = None, cache: ResponseCache | None = None) -> None:
        self.config = config
        self.cache = cache
        self.pool = pool
        self.client = client
        self.clock = clock
        self.observers: list[RequestObserver] = observers if observers is not None else []

    def _exchanges(self, call: Call, group: str) -> dict[str, Exchange]:
        providers = self.pool.providers(group)
        return {p: make_exchange(call.surface, p, body=call.body, raw=call.raw, model=call.model,
                                 drop_params=self.config.drop_params, include_usage=call.include_usage,
                                 method=call.method) for p in providers}

    async def handle(self, call: Call) -> Reply | StreamReply:
        call.at = self.clock.time()
        controls = strip_controls(call)  # LiteLLM's per-request `cache` field never goes upstream
        plan = self.cache.plan(call, controls) if self.cache is not None else None
        if plan is not None:  # before any key is leased: a hit spends no quota
            assert self.cache is not None
            hit = await self.cache.lookup(plan, call)
            if hit is not None:
                call.cache_hit = True
                self._finish(call, 200, "cache_hit")
                return hit
        try:
            result = await self._route(call)
        except NoCapacity as e:
            self._finish(call, e.status if e.retry_after is not None else 503, "refused", e.message)
            raise
        except UpstreamFailed as e:
            self._finish(call, e.status, "failed", e.message)
            raise
        if plan is not None:
            assert self.cache is not None
            return await self.cache.keep(plan, call, result)
        return result

    async def _route(self, call: Call) -> Reply | StreamReply:
        router = self.config.router
        deadline = call.at + router.queue_timeout
        groups = [call.group, *router.fallbacks.get(call.group, ())]
        failures: list[Failure] = []
        refusal: NoCapacity | None = None
        i = 0
        while i < len(groups):
            group = groups[i]
            i += 1
            exchanges = self._exchanges(call, group)  # translation errors surface here, before any quota is spent
            if not exchanges:
                continue
            tokens = next(iter(exchanges.values())).estimated_tokens
            failed_keys: list[str] = []
            left = 1 + router.num_retries  # attempts this group may still make
            while left > 0:
                left -= 1
                asked = self.clock.time()
                try:
                    lease = await self.pool.acquire(group, tokens, exclude=failed_keys, metered=call.metered,
                                                    wait=max(0.0, deadline - asked))
                except NoCapacity as e:
                    call.queue_wait += self.clock.time() - asked
                    refusal = e
                    break
                call.queue_wait += self.clock.time() - asked
                dep = lease.deployment
                ex = exchanges[dep.cfg.provider]
                timeout = dep.cfg.timeout or router.timeout
                if call.stream and dep.cfg.stream_timeout:
                    timeout = dep.cfg.stream_timeout  # a stream's longest silence
                try:
                    result = await attempt(self.client, ex, lease, stream=call.stream, timeout=timeout,
                                           now=self.clock.time,
                                           on_done=lambda v, u, d=dep: self._done(call, d.fingerprint, v, u, d.model))
                except BaseException:  # cancelled, or a bug: the key is not to blame, but it must be freed
                    await lease.release(_ABANDONED)  # a no-op if attempt() already released it
                    raise
                if not isinstance(result, Failure):
                    result.headers["x-keymux-key"] = dep.fingerprint
                    result.headers["x-keymux-attempts"] = str(len(failures) + 1)
                    call.key, call.upstream_model = dep.fingerprint, dep.model
                    if call.ttfb is None:
                        call.ttfb = time.perf_counter() - call.started
                    return result
                call.attempts.append((dep.fingerprint, result.verdict.outcome.value))
                failures.append(result)
                if result.verdict.outcome is Outcome.CLIENT_ERROR:
                    overflow = router.context_window_fallbacks.get(group)
                    if overflow and _is_context_overflow(result):
                        groups[i:] = list(overflow)
                        break
                    call.key, call.upstream_model = dep.fingerprint, dep.model
                    self._finish(call, result.status, "client_error", result.verdict.reason)
                    return Reply(result.status, ex.error(result.status, _scrub(result.raw, dep.cfg.api_key,
                                                                               dep.fingerprint), result.verdict))
                failed_keys.append(dep.fingerprint)
                if dep.cfg.max_retries is not None:  # this deployment's own bound on what follows its failure
                    left = min(left, dep.cfg.max_retries)
        raise self._give_up(call, failures, refusal)

    def _give_up(self, call: Call, failures: list[Failure], refusal: NoCapacity | None) -> Exception:
        tried = "; ".join(f"{fp} {outcome}" for fp, outcome in call.attempts[-4:])
        if refusal is not None and refusal.retry_after is not None:
            if failures:
                refusal.message = f"{len(failures)} attempt(s) failed ({tried}); {refusal.message}"
            return refusal
        if not failures:
            assert refusal is not None
            return UpstreamFailed(refusal.message, status=503)
        last = failures[-1]
        outcome = last.verdict.outcome
        message = f"{call.group}: {len(failures)} attempt(s) failed ({tried}); last: {last.verdict.reason}"
        if refusal is not None:
            message += f"; {refusal.message}"
        if outcome in (Outcome.RATE_LIMITED, Outcome.BACKOFF, Outcome.DAILY_EXHAUSTED):
            wait = last.verdict.retry_after
            if outcome is Outcome.DAILY_EXHAUSTED and last.verdict.until:
                wait = max(0.0, last.verdict.until - self.clock.time())
            return NoCapacity(message, retry_after=wait if wait is not None else 5.0)
        status = 504 if outcome is Outcome.TIMEOUT else 503 if outcome is Outcome.INVALID_KEY else 502
        if last.status in (500, 503) and outcome is Outcome.UPSTREAM_ERROR:
            status = last.status
        return UpstreamFailed(message, status=status)

    def _done(self, call: Call, fingerprint: str, verdict: Verdict, usage: Usage | None, model: str) -> None:
        """An answer has been fully delivered (for a stream: its last event, or its mid-stream error)."""
        call.attempts.append((fingerprint, verdict.outcome.value))
        call.usage = usage
        call.key, call.upstream_model = fingerprint, model  # observers need them (a whole answer ends here)
        if call.ttfb is None:
            call.ttfb = time.perf_counter() - call.started
        if verdict.ok:
            self._finish(call, 200, "ok")
        else:
            self._finish(call, 200, "broken", verdict.reason)

    def _finish(self, call: Call, status: int, outcome: str, detail: str = "") -> None:
        if call.finished:
            return
        call.finished = True
        call.status, call.outcome, call.detail = status, outcome, detail
        call.latency = time.perf_counter() - call.started
        tokens = f" tokens={call.usage.total}" if call.usage else ""
        extra = f" ({detail})" if detail else ""
        access(log, f"{call.request_id} {call.surface} group={call.group} key={call.key or '-'} status={status} "
                    f"{call.latency * 1000:.0f}ms attempts={max(1, len(call.attempts))}"
                    f"{' stream' if call.stream else ''}{tokens}{extra}")
        for observer in self.observers:
            observer(call)


def _is_context_overflow(failure: Failure) -> bool:
    text = failure.raw.decode("utf-8", "replace").lower()
    return any(marker in text for marker in _CONTEXT_OVERFLOW)


def _scrub(raw: bytes, api_key: str, fingerprint: str) -> bytes:
    """Upstream error bodies can quote the key (e.g. "Consumer 'api_key:...' has been suspended")."""
    return raw.replace(api_key.encode(), fingerprint.encode()) if api_key and api_key.encode() in raw else raw

