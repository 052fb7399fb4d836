"""The relay, the attempt logic and the exchanges on the in-memory transport: no sockets, real pool and
store, the FakeClock, and upstream answers byte for byte as Google sends them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.errors import UpstreamFailed
from keymux.fingerprint import fingerprint
from keymux.live import Live, build_snapshot
from keymux.pipeline import Pipeline
from keymux.pool import Pool
from keymux.pool.memory import MemoryStore
from keymux.relay import Relay
from keymux.request import Reply, Request, StreamReply, Trace
from keymux.transport import Answer, MemoryTransport, Sent, UpstreamError

KEY_A, KEY_B = "AIzaFAKE-relay-unit-key-aaaaaaaaaaaaaaaa", "AIzaFAKE-relay-unit-key-bbbbbbbbbbbbbbbb"
FP = {k: fingerprint(k, "gemini") for k in (KEY_A, KEY_B)}
ANSWER = orjson.dumps({
    "candidates": [{"content": {"parts": [{"text": "hello there"}], "role": "model"}, "finishReason": "STOP",
                    "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
    "modelVersion": "gemini-2.5-flash"})
CHUNKS = [orjson.dumps({"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}]})
          for t in ("hel", "lo")] + [orjson.dumps({
              "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP",
                              "index": 0}],
              "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}})]


def sse(*payloads: bytes) -> list[bytes]:
    return [b"data: " + p + b"\r\n\r\n" for p in payloads]


def google_error(status: int, google_status: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message, "status": google_status}})


class Rig:
    def __init__(self, respond: Any, **params: Any) -> None:
        router = params.pop("router", {})
        doc = {"model_list": [{"model_name": "chat", "litellm_params": {
            "model": "gemini/gemini-2.5-flash", "api_key": k, "api_base": "http://upstream.test", "order": i + 1,
            **params}} for i, k in enumerate((KEY_A, KEY_B))], "router_settings": {"routing_strategy": "simple-shuffle", **router}}
        self.clock = FakeClock()
        self.live = Live(build_snapshot(parse_config(doc, env={}), self.clock))
        self.pool = Pool(self.live, MemoryStore(), self.clock)
        self.transport = MemoryTransport(respond)
        self.traces: list[Trace] = []
        self.pipeline = Pipeline(Relay(self.live, self.pool, self.transport, self.clock), self.clock,
                                 [self.traces.append])

    async def ask(self, stream: bool = False, **body: Any) -> Reply | StreamReply:
        doc = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": stream, **body}
        request = Request(surface="openai", operation="chat", group="chat", model="chat", body=doc,
                          raw=orjson.dumps(doc), stream=stream, request_id=f"r{len(self.traces)}")
        return await self.pipeline.handle(request)

    def in_flight(self) -> int:
        return sum(d.in_flight for d in self.live.snapshot.groups["chat"])


def by_key(answers: dict[str, list[Answer | BaseException]]) -> Any:
    """Each key answers its list in order (the last one again once the list is spent)."""
    def respond(sent: Sent) -> Answer | BaseException:
        queue = answers[sent.headers["x-goog-api-key"]]
        return queue.pop(0) if len(queue) > 1 else queue[0]
    return respond


async def test_a_failed_key_is_retried_on_the_other_and_both_attempts_are_traced() -> None:
    rig = Rig(by_key({KEY_A: [Answer.json(503, google_error(503, "UNAVAILABLE", "The model is overloaded."))],
                      KEY_B: [Answer.json(200, ANSWER)]}))
    reply = await rig.ask()  # `order`: key A first
    assert isinstance(reply, Reply) and reply.status == 200
    assert (reply.headers["x-keymux-key"], reply.headers["x-keymux-attempts"]) == (FP[KEY_B], "2")
    trace = rig.traces[0]
    assert trace.attempts == [(FP[KEY_A], "upstream_error"), (FP[KEY_B], "ok")]
    assert trace.outcome == "ok" and trace.usage is not None and trace.usage.total == 5
    assert [s.headers["x-goog-api-key"] for s in rig.transport.sent] == [KEY_A, KEY_B]
    assert all(s.url.endswith("/models/gemini-2.5-flash:generateContent") for s in rig.transport.sent)
    assert rig.in_flight() == 0


async def test_an_upstream_error_quoting_the_key_reaches_the_client_with_its_fingerprint_only() -> None:
    def respond(sent: Sent) -> Answer:
        key = sent.headers["x-goog-api-key"]
        return Answer.json(400, google_error(400, "INVALID_ARGUMENT", f"Bad request for api_key:{key} here"))
    rig = Rig(respond)
    reply = await rig.ask()
    assert isinstance(reply, Reply) and reply.status == 400
    trace = rig.traces[0]
    assert KEY_A.encode() not in reply.body and KEY_B.encode() not in reply.body
    assert trace.key is not None and trace.key.encode() in reply.body
    assert KEY_A not in trace.detail and KEY_B not in trace.detail


async def test_a_5xx_quoting_the_key_is_scrubbed_in_the_final_error_and_the_trace() -> None:
    def respond(sent: Sent) -> Answer:
        key = sent.headers["x-goog-api-key"]
        return Answer.json(500, google_error(500, "INTERNAL", f"internal error for Consumer 'api_key:{key}'"))
    rig = Rig(respond)
    with pytest.raises(UpstreamFailed) as raised:
        await rig.ask()
    for text in (raised.value.message, rig.traces[0].detail):
        assert KEY_A not in text and KEY_B not in text
    assert rig.traces[0].outcome == "failed"


@pytest.mark.parametrize("broken", [b"", b"   ", ANSWER[: len(ANSWER) // 2]], ids=["empty", "blank", "cut-short"])
async def test_a_200_that_is_empty_or_cut_short_is_the_upstreams_failure_and_is_retried(broken: bytes) -> None:
    rig = Rig(by_key({KEY_A: [Answer.json(200, broken)], KEY_B: [Answer.json(200, ANSWER)]}),
              router={"num_retries": 1})
    reply = await rig.ask()
    assert isinstance(reply, Reply) and reply.status == 200 and b"hello there" in reply.body
    assert rig.traces[0].attempts == [(FP[KEY_A], "upstream_error"), (FP[KEY_B], "ok")]


async def test_every_key_answering_an_empty_200_is_a_502_not_a_broken_200() -> None:
    rig = Rig(lambda sent: Answer.json(200, b""))
    with pytest.raises(UpstreamFailed) as raised:
        await rig.ask()
    assert raised.value.status == 502 and "empty upstream answer" in raised.value.message


async def test_a_deployments_max_retries_bounds_the_retries_after_it_failed() -> None:
    rig = Rig(lambda sent: Answer.json(503, google_error(503, "UNAVAILABLE", "overloaded")), max_retries=0,
              router={"num_retries": 3})
    with pytest.raises(UpstreamFailed):
        await rig.ask()
    assert len(rig.transport.sent) == 1 and len(rig.traces[0].attempts) == 1


async def test_a_stream_uses_stream_timeout_as_its_silence_limit_and_a_whole_answer_timeout() -> None:
    rig = Rig(lambda sent: Answer.sse(sse(*CHUNKS)) if sent.stream else Answer.json(200, ANSWER),
              timeout=30, stream_timeout=7)
    await rig.ask()
    reply = await rig.ask(stream=True)
    assert isinstance(reply, StreamReply)
    async for _ in reply.rest:
        pass
    assert [(s.stream, s.timeout) for s in rig.transport.sent] == [(False, 30.0), (True, 7.0)]
    assert rig.transport.sent[1].url.endswith(":streamGenerateContent?alt=sse")


async def test_a_stream_the_client_left_is_recorded_cancelled_and_frees_its_key() -> None:
    rig = Rig(lambda sent: Answer.sse(sse(*CHUNKS)))
    reply = await rig.ask(stream=True)
    assert isinstance(reply, StreamReply) and rig.in_flight() == 1
    await reply.end(False)  # what the surface does when the client's connection is gone
    await reply.rest.aclose()  # type: ignore[attr-defined]
    trace = rig.traces[0]
    assert (trace.status, trace.outcome, reply.ended_ok) == (499, "cancelled", False)
    assert rig.in_flight() == 0 and rig.transport.answers[0].closed


async def test_a_stream_read_to_its_end_is_ok_with_usage_and_the_connection_released() -> None:
    rig = Rig(lambda sent: Answer.sse([b"".join(sse(*CHUNKS))[i:i + 7] for i in range(0, 400, 7)]))
    reply = await rig.ask(stream=True, stream_options={"include_usage": True})
    assert isinstance(reply, StreamReply)
    body = b"".join(reply.first) + b"".join([c async for c in reply.rest])
    text = "".join(orjson.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in body.split(b"\n\n") if line.startswith(b"data: {") and b'"choices":[{' in line)
    assert text == "hello" and body.endswith(b"data: [DONE]\n\n")
    trace = rig.traces[0]
    assert (trace.outcome, reply.ended_ok, trace.usage.total if trace.usage else None) == ("ok", True, 5)
    assert rig.transport.answers[0].released


async def test_an_error_after_the_first_event_is_an_error_event_and_a_broken_trace() -> None:
    events = sse(CHUNKS[0]) + [UpstreamError("connection reset by peer")]
    rig = Rig(lambda sent: Answer.sse(events))
    reply = await rig.ask(stream=True)
    assert isinstance(reply, StreamReply)
    rest = b"".join([c async for c in reply.rest])
    error = orjson.loads(rest.split(b"data: ", 1)[1])
    assert "upstream stream broke" in error["error"]["message"]
    assert (rig.traces[0].status, rig.traces[0].outcome) == (200, "broken") and rig.in_flight() == 0


async def test_a_stream_with_no_event_at_all_fails_over_instead_of_answering_done() -> None:
    rig = Rig(by_key({KEY_A: [Answer.sse([b""])], KEY_B: [Answer.sse(sse(*CHUNKS))]}))
    reply = await rig.ask(stream=True)
    assert isinstance(reply, StreamReply) and reply.headers["x-keymux-key"] == FP[KEY_B]
    await reply.rest.aclose()  # type: ignore[attr-defined]
    await reply.end()
    assert rig.traces[0].attempts == [(FP[KEY_A], "upstream_error"), (FP[KEY_B], "ok")]


async def test_a_client_that_leaves_while_its_request_is_upstream_frees_the_key_and_is_recorded() -> None:
    gate = asyncio.Event()

    async def respond(sent: Sent) -> Answer:
        await gate.wait()
        return Answer.json(200, ANSWER)
    rig = Rig(respond)
    task = asyncio.create_task(rig.ask())
    while not rig.transport.sent:
        await asyncio.sleep(0)
    assert rig.in_flight() == 1
    task.cancel()  # aiohttp cancels the handler when its client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.in_flight() == 0 and (rig.traces[0].status, rig.traces[0].outcome) == (499, "cancelled")
