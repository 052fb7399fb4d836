"""The one request pipeline every surface uses (a `Handler`, keymux/request.py).

resolve group -> acquire a key (waiting in the pool's queue if needed) -> one attempt ->
on a retryable verdict, a different key (never one that already failed for this request),
up to `num_retries` (a failed deployment's own `max_retries` can only lower what follows), then the
`fallbacks` groups -> the answer, or an honest error. What happened is written into the request's `Trace`.
"""

from __future__ import annotations

import logging

from keymux.attempt import Failure, attempt
from keymux.clock import Clock
from keymux.errors import NoCapacity, UpstreamFailed
from keymux.exchange import Exchange, make_exchange
from keymux.live import Live, Snapshot
from keymux.pool import Pool
from keymux.pool.deployment import Deployment
from keymux.providers.base import Outcome, Verdict
from keymux.request import Reply, Request, StreamReply, Trace
from keymux.transport import Transport

log = logging.getLogger("keymux.relay")

_ABANDONED = Verdict(Outcome.CLIENT_ERROR, reason="attempt abandoned")  # frees the key, blames nobody
_CONTEXT_OVERFLOW = ("context_length_exceeded", "maximum context length", "exceeds the maximum number of tokens",
                     "input token count", "too many tokens")


class Relay:
    def __init__(self, live: Live, pool: Pool, transport: Transport, clock: Clock) -> None:
        self.live = live
        self.pool = pool
        self.transport = transport
        self.clock = clock

    def _exchanges(self, request: Request, group: str, snapshot: Snapshot) -> dict[str, Exchange]:
        return {p: make_exchange(request.surface, p, body=request.body, raw=request.raw, model=request.model,
                                 drop_params=snapshot.config.drop_params, include_usage=request.include_usage,
                                 method=request.operation) for p in snapshot.providers(group)}

    async def __call__(self, request: Request, trace: Trace) -> Reply | StreamReply:
        snapshot = self.live.snapshot  # one snapshot for the whole request, whatever a reload does meanwhile
        router = snapshot.router
        deadline = trace.at + router.queue_timeout
        groups = [request.group, *router.fallbacks.get(request.group, ())]
        failures: list[Failure] = []
        refusal: NoCapacity | None = None
        i = 0
        while i < len(groups):
            group = groups[i]
            i += 1
            exchanges = self._exchanges(request, group, snapshot)  # translation errors raise here, before any quota
            if not exchanges:
                continue
            tokens = next(iter(exchanges.values())).estimated_tokens
            failed_keys: list[str] = []
            left = 1 + router.num_retries  # attempts this group may still make
            while left > 0:
                left -= 1
                asked = self.clock.time()
                try:
                    lease = await self.pool.acquire(group, tokens, exclude=failed_keys, metered=request.metered,
                                                    wait=max(0.0, deadline - asked))
                except NoCapacity as e:
                    trace.queue_wait += self.clock.time() - asked
                    refusal = e
                    break
                trace.queue_wait += self.clock.time() - asked
                dep = lease.deployment
                ex = exchanges[dep.cfg.provider]
                try:
                    result = await attempt(self.transport, ex, lease, stream=request.stream,
                                           timeout=_timeout(dep, request.stream, router.timeout),
                                           now=self.clock.time, trace=trace)
                except BaseException:  # cancelled, or a bug: the key is not to blame, but it must be freed
                    await lease.release(_ABANDONED)  # a no-op if attempt() already released it
                    raise
                if not isinstance(result, Failure):
                    result.headers["x-keymux-key"] = dep.fingerprint
                    result.headers["x-keymux-attempts"] = str(len(failures) + 1)
                    trace.answered_by(dep.fingerprint, dep.model)
                    return result
                trace.attempts.append((dep.fingerprint, result.verdict.outcome.value))
                failures.append(result)
                if result.verdict.outcome is Outcome.CLIENT_ERROR:
                    overflow = router.context_window_fallbacks.get(group)
                    if overflow and _is_context_overflow(result):
                        groups[i:] = list(overflow)
                        break
                    trace.answered_by(dep.fingerprint, dep.model)
                    trace.finish(result.status, "client_error", result.verdict.reason)
                    return Reply(result.status, ex.error(result.status, result.raw, result.verdict))
                failed_keys.append(dep.fingerprint)
                if dep.cfg.max_retries is not None:  # this deployment's own bound on what follows its failure
                    left = min(left, dep.cfg.max_retries)
        raise self._give_up(request, trace, failures, refusal)

    def _give_up(self, request: Request, trace: Trace, failures: list[Failure],
                 refusal: NoCapacity | None) -> Exception:
        tried = "; ".join(f"{fp} {outcome}" for fp, outcome in trace.attempts[-4:])
        if refusal is not None and refusal.retry_after is not None:
            if failures:
                refusal.message = f"{len(failures)} attempt(s) failed ({tried}); {refusal.message}"
            return refusal
        if not failures:
            assert refusal is not None
            return UpstreamFailed(refusal.message, status=503)
        last = failures[-1]
        outcome = last.verdict.outcome
        message = f"{request.group}: {len(failures)} attempt(s) failed ({tried}); last: {last.verdict.reason}"
        if refusal is not None:
            message += f"; {refusal.message}"
        if outcome in (Outcome.RATE_LIMITED, Outcome.BACKOFF, Outcome.DAILY_EXHAUSTED):
            wait = last.verdict.retry_after
            if outcome is Outcome.DAILY_EXHAUSTED and last.verdict.until:
                wait = max(0.0, last.verdict.until - self.clock.time())
            return NoCapacity(message, retry_after=wait if wait is not None else 5.0)
        status = 504 if outcome is Outcome.TIMEOUT else 503 if outcome is Outcome.INVALID_KEY else 502
        if last.status in (500, 503, 529) and outcome is Outcome.UPSTREAM_ERROR:
            status = last.status
        return UpstreamFailed(message, status=status)


def _timeout(dep: Deployment, stream: bool, default: float) -> float:
    """A whole answer's deadline; for a stream, the longest silence (`stream_timeout`, else `timeout`)."""
    cfg = dep.cfg
    if stream and cfg.stream_timeout is not None:
        return cfg.stream_timeout
    return cfg.timeout or default


def _is_context_overflow(failure: Failure) -> bool:
    text = failure.raw.decode("utf-8", "replace").lower()
    return any(marker in text for marker in _CONTEXT_OVERFLOW)
