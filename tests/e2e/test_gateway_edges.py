"""Auth, health, bad input, client disconnects, and keys never leaking."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from keymux.app import create_app
from keymux.clock import FakeClock
from keymux.config.load import parse_config
from keymux.emulator import EmuKey, GeminiEmulator

from .conftest import T0, StackFactory, gemini_group

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
KEYS = ["AIzaSyTESTKEYalpha0000000000000000000000", "AIzaSyTESTKEYrevoked00000000000000000000"]


async def _post(stack, path: str, *, data: bytes | None = None, body: dict | None = None,  # type: ignore[no-untyped-def]
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    hdrs = {"authorization": "Bearer sk-master", "content-type": "application/json", **(headers or {})}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}{path}", data=data if data is not None else orjson.dumps(body),
                             headers=hdrs) as resp:
            return resp.status, orjson.loads(await resp.read()), {str(k): v for k, v in resp.headers.items()}


async def _get(stack, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.base}{path}", headers=headers or {}) as resp:
            return resp.status, orjson.loads(await resp.read())


@pytest.fixture
async def stack(make_stack: StackFactory):  # type: ignore[no-untyped-def]
    return await make_stack({"model_list": gemini_group("chat", ["k1"])}, gemini_keys={"k1": EmuKey()})


@pytest.mark.parametrize("headers,path", [
    ({"authorization": "Bearer sk-master"}, "/v1/chat/completions"),
    ({"x-api-key": "sk-master"}, "/v1/chat/completions"),
    ({"x-goog-api-key": "sk-master"}, "/v1/chat/completions"),
    ({}, "/v1/chat/completions?key=sk-master"),
])
async def test_the_gateway_key_is_accepted_where_each_sdk_sends_it(stack, headers, path) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}{path}", json=CHAT, headers=headers) as resp:
            assert resp.status == 200


async def test_wrong_or_missing_gateway_key_is_401_in_each_surfaces_shape(stack) -> None:  # type: ignore[no-untyped-def]
    status, body, _ = await _post(stack, "/v1/chat/completions", body=CHAT, headers={"authorization": "Bearer nope"})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    status, body, _ = await _post(stack, "/v1beta/models/chat:generateContent", body={"contents": []},
                                  headers={"authorization": "", "x-goog-api-key": "nope"})
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED" and body["error"]["code"] == 401
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}/v1/chat/completions", json=CHAT) as resp:
            assert resp.status == 401 and "missing gateway key" in (await resp.json())["error"]["message"]
    assert stack.gemini.calls == []


async def test_health_probes_are_open_and_spend_no_quota(stack) -> None:  # type: ignore[no-untyped-def]
    for path in ("/health/liveliness", "/health/liveness", "/health/readiness"):
        status, _ = await _get(stack, path)
        assert status == 200
    status, _ = await _get(stack, "/health")
    assert status == 401
    status, body = await _get(stack, "/health", {"authorization": "Bearer sk-master"})
    assert status == 200 and body["groups"]["chat"]["ready"] == 1
    assert stack.gemini.calls == []


async def test_health_summarises_states_and_when_the_next_key_frees(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1", "bad"])},
                             gemini_keys={"k1": EmuKey(rpm=1), "bad": EmuKey(status="invalid")})
    for _ in range(3):
        await _post(stack, "/v1/chat/completions", body=CHAT)
    _, body = await _get(stack, "/health", {"authorization": "Bearer sk-master"})
    chat = body["groups"]["chat"]
    assert (chat["ready"], chat["cooling"], chat["disabled"]) == (0, 1, 1)
    assert 55 <= chat["next_free_in"] <= 61
    reasons = {k["state"]: k["reason"] for k in chat["keys"]}
    assert reasons["disabled"] == "invalid key" and "Google asked to wait" in reasons["cooling"]


@pytest.mark.parametrize("data,headers,status,needle", [
    (b"{not json", {}, 400, "not valid JSON"),
    (b"[1, 2]", {}, 400, "must be a JSON object"),
    (b"", {}, 400, "empty"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), {}, 400, "'model' is required"),
    (orjson.dumps({"model": "chat"}), {}, 400, "'messages' is required"),
    (orjson.dumps({"model": "chat", "messages": [{"role": "wizard", "content": "x"}]}), {}, 400, "role"),
    (orjson.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}), {}, 404, "available: chat"),
    (b"model=chat", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
])
async def test_bad_input_gets_a_clear_error_in_the_clients_shape(stack, data, headers, status, needle) -> None:  # type: ignore[no-untyped-def]
    got, body, _ = await _post(stack, "/v1/chat/completions", data=data, headers=headers)
    assert got == status and needle in body["error"]["message"]
    assert stack.gemini.calls == []
    ok, _, _ = await _post(stack, "/v1/chat/completions", body=CHAT)  # the server is unaffected
    assert ok == 200


async def test_oversized_bodies_are_refused_with_413(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"]),
                              "general_settings": {"max_request_size_mb": 1}}, gemini_keys={"k1": EmuKey()})
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}
    status, body, _ = await _post(stack, "/v1/chat/completions", body=big)
    assert status == 413 and "limit" in body["error"]["message"]
    status, body, _ = await _post(stack, "/v1beta/models/chat:generateContent",
                                  body={"contents": [{"parts": [{"text": "x" * (2 * 1024 * 1024)}]}]})
    assert status == 413 and body["error"]["status"] == "INVALID_ARGUMENT"


async def test_unknown_routes_answer_in_shape(stack) -> None:  # type: ignore[no-untyped-def]
    status, body = await _get(stack, "/v1/nothing-here", {"authorization": "Bearer sk-master"})
    assert status == 404 and "no route" in body["error"]["message"]


async def test_a_client_that_disconnects_mid_stream_frees_its_key(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("chat", ["k1"], max_parallel_requests=1)},
                             gemini_keys={"k1": EmuKey()})
    stack.gemini.inject(None, "midstream")  # the emulator pauses before its last event: we leave during it
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{stack.base}/v1/chat/completions", json={**CHAT, "stream": True},
                               headers={"authorization": "Bearer sk-master"})
        assert (await resp.content.readany()).startswith(b"data: ")
        resp.close()
    deployment = stack.gateway.pool.groups["chat"][0]
    for _ in range(50):
        if deployment.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert deployment.in_flight == 0
    status, _, _ = await _post(stack, "/v1/chat/completions", body=CHAT)
    assert status == 200  # max_parallel_requests=1 and the key is free again


async def test_no_raw_key_in_responses_or_logs(make_stack: StackFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await make_stack({"model_list": gemini_group("chat", KEYS), "router_settings": {"routing_strategy": "round-robin"}},
                             gemini_keys={KEYS[0]: EmuKey(rpm=1), KEYS[1]: EmuKey(status="suspended")})
    seen = []
    for _ in range(4):
        _, body, headers = await _post(stack, "/v1/chat/completions", body=CHAT)
        seen.append(orjson.dumps(body) + orjson.dumps(headers))
    for path in ("/health", "/v1/models", "/v1beta/models"):
        _, body = await _get(stack, path, {"authorization": "Bearer sk-master"})
        seen.append(orjson.dumps(body))
    blob = b"".join(seen) + caplog.text.encode()
    assert stack.gemini.count(kind="suspended") == 1
    for key in KEYS:
        assert key.encode() not in blob and key[10:30].encode() not in blob


async def test_a_stream_closed_before_it_ran_still_frees_its_key_and_is_recorded(make_stack: StackFactory) -> None:
    """The client can leave between the first upstream event and the first write: the stream's generator is
    then closed without ever running, and only StreamReply.end() lets go of the key and reports the request."""
    from keymux.request import Request, StreamReply, Trace

    stack = await make_stack({"model_list": gemini_group("chat", ["k1"], max_parallel_requests=1)},
                             gemini_keys={"k1": EmuKey()})
    finished: list[Trace] = []
    stack.gateway.observers.append(finished.append)
    body = {**CHAT, "stream": True}
    call = Request(surface="openai", operation="chat", group="chat", model="chat", body=body, raw=orjson.dumps(body),
                   stream=True, request_id="left-early")
    reply = await stack.gateway.handle(call)
    assert isinstance(reply, StreamReply)
    deployment = stack.gateway.pool.groups["chat"][0]
    assert deployment.in_flight == 1
    await reply.rest.aclose()  # never started: runs no finally
    await reply.end()
    await reply.end()  # idempotent
    assert deployment.in_flight == 0 and [t.request.request_id for t in finished] == ["left-early"]
    status, _, _ = await _post(stack, "/v1/chat/completions", body=CHAT)
    assert status == 200  # max_parallel_requests=1: the key was really freed


class _CookieSettingGemini(GeminiEmulator):
    """The Gemini emulator behind a front end that sets a session cookie, noting the cookies it receives."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.cookies_received: list[str | None] = []

    def app(self) -> web.Application:
        app = super().app()

        @web.middleware
        async def front_end(request: web.Request, handler):  # type: ignore[no-untyped-def]
            self.cookies_received.append(request.headers.get("Cookie"))
            resp = await handler(request)
            resp.set_cookie("GFE_SESSION", "issued-to-whoever-asked-first")
            return resp

        app.middlewares.append(front_end)
        return app


async def test_a_cookie_an_upstream_sets_for_one_key_never_rides_along_with_another() -> None:
    clock = FakeClock(T0)
    emu = _CookieSettingGemini({"k1": EmuKey(), "k2": EmuKey()}, clock=clock)
    url = await emu.serve()
    config = parse_config({"model_list": gemini_group("chat", ["k1", "k2"]),
                           "router_settings": {"routing_strategy": "round-robin"}},
                          env={"KEYMUX_GEMINI_API_BASE": url.replace("127.0.0.1", "localhost")})  # a host name:
    # cookie jars ignore cookies from IP addresses
    server = TestServer(create_app(config, clock=clock))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                async with http.post(server.make_url("/v1/chat/completions"), json=CHAT) as resp:
                    assert resp.status == 200
        assert len(emu.cookies_received) == 3 and emu.cookies_received == [None, None, None]
    finally:
        await server.close()
        await emu.close()


async def test_an_unreachable_upstream_is_a_502_naming_where_without_the_key() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = parse_config({"model_list": gemini_group("chat", [KEYS[0]]), "router_settings": {"num_retries": 0}},
                          env={"KEYMUX_GEMINI_API_BASE": f"http://127.0.0.1:{port}"})
    server = TestServer(create_app(config, clock=FakeClock(T0)))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(server.make_url("/v1/chat/completions"), json=CHAT) as resp:
                text = await resp.text()
        assert resp.status == 502 and "cannot connect to 127.0.0.1:" in text and "upstream_error" in text
        assert KEYS[0] not in text
    finally:
        await server.close()
