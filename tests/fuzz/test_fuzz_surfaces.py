"""Property-based requests to every surface through HTTP: whatever a client sends, keymux answers without a 5xx
of its own, errors come in the client's API shape (OpenAI `{"error": {...}}` on /v1 and /admin, google.rpc
Status on /v1beta), and no key (upstream or gateway) is in any answer. The upstreams are healthy here: a 5xx
could only be keymux's."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import strategies as S
from .conftest import MASTER, Answer, ThreadedStack, assert_no_secret, raw_http

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
AUTH = [(b"authorization", b"Bearer " + MASTER.encode()), (b"content-type", b"application/json")]


def framing_error(a: Answer) -> bool:
    """aiohttp's HTTP parser refused the request before keymux saw it (plain text, not ours to shape)."""
    return a.status == 400 and a.headers.get(b"content-type", b"").startswith(b"text/plain")


def check(a: Answer, surface: str) -> None:
    assert a.status < 500, f"keymux answered {a.status}: {a.body[:300]!r}"
    assert_no_secret(a.raw)
    if a.status < 400 or framing_error(a):
        return
    err = orjson.loads(a.body)["error"]
    assert isinstance(err["message"], str) and err["message"]
    if surface == "gemini":
        assert isinstance(err["code"], int) and err["code"] == a.status and isinstance(err["status"], str)
    else:
        assert isinstance(err["type"], str)


def stream_ok(a: Answer) -> None:
    """A 200 stream must not carry an error event with a key in it (checked by assert_no_secret) and must be
    events or a JSON array: never a Python traceback or half a line."""
    if a.status == 200 and a.headers.get(b"content-type", b"").startswith(b"text/event-stream"):
        for line in a.body.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                orjson.loads(line[6:])


@FUZZ
@given(body=S.body_bytes(S.chat_body))
def test_openai_chat_bodies(threaded_stack: ThreadedStack, body: bytes) -> None:
    a = raw_http(threaded_stack.port, "POST", b"/v1/chat/completions", AUTH, body)
    check(a, "openai")
    stream_ok(a)


@FUZZ
@given(model=S.gemini_model, method=st.sampled_from(["generateContent", "streamGenerateContent", "countTokens"]),
       sse=st.booleans(), body=S.body_bytes(S.gemini_body))
def test_gemini_model_method_bodies(threaded_stack: ThreadedStack, model: str, method: str, sse: bool,
                                    body: bytes) -> None:
    target = f"/v1beta/models/{model}:{method}{'?alt=sse' if sse else ''}".encode()
    a = raw_http(threaded_stack.port, "POST", target, AUTH, body)
    check(a, "gemini")
    stream_ok(a)


@FUZZ
@given(body=S.body_bytes(S.admin_body))
def test_admin_key_bodies(threaded_stack: ThreadedStack, body: bytes) -> None:
    a = raw_http(threaded_stack.port, "POST", b"/admin/keys", AUTH, body)
    check(a, "openai")
    try:
        given_key = orjson.loads(body).get("api_key")
    except (orjson.JSONDecodeError, AttributeError):
        given_key = None
    if isinstance(given_key, str) and len(given_key.strip()) >= 8:  # the added key comes back as a fingerprint
        assert given_key.strip().encode() not in a.raw
    assert a.status in (201, 400, 404, 409, 413, 415), a.body[:300]


@FUZZ
@given(headers=st.lists(st.tuples(S.header_name, S.header_value), max_size=4),
       path=st.sampled_from([b"/v1/chat/completions", b"/v1beta/models/chat:generateContent", b"/admin/keys",
                             b"/metrics", b"/v1/models", b"/health/readiness"]))
def test_odd_header_bytes(threaded_stack: ThreadedStack, headers: list[tuple[bytes, bytes]], path: bytes) -> None:
    body = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
                        if path.startswith(b"/v1/") else {"contents": [{"parts": [{"text": "hi"}]}]})
    method = "GET" if path in (b"/metrics", b"/v1/models", b"/health/readiness") else "POST"
    a = raw_http(threaded_stack.port, method, path, headers, body if method == "POST" else b"")
    check(a, "gemini" if path.startswith(b"/v1beta") else "openai")


def test_the_gateway_still_serves_and_records_after_the_odd_headers(threaded_stack: ThreadedStack) -> None:
    """Non-UTF-8 bytes in a key header and in X-Request-Id: a clear 4xx or a normal answer, and the ledger
    keeps writing (issue 17: one such request killed the SQLite writer and the dashboard with it)."""
    port = threaded_stack.port
    chat = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    for name in (b"authorization", b"x-api-key", b"x-goog-api-key"):
        a = raw_http(port, "POST", b"/v1/chat/completions", [(name, b"Bearer \xff\xfe\x80key")], chat)
        check(a, "openai")
        assert a.status == 401, a.body[:200]
    a = raw_http(port, "POST", b"/v1/chat/completions", [*AUTH, (b"x-request-id", b"req-\xff\xc3\x28")], chat)
    check(a, "openai")
    for i in range(3):
        a = raw_http(port, "POST", b"/v1/chat/completions", [*AUTH, (b"x-request-id", f"after-{i}".encode())], chat)
        assert a.status == 200
    a = raw_http(port, "GET", b"/admin/requests?limit=10", AUTH)
    assert a.status == 200, a.body[:300]
    ids = {r["request_id"] for r in orjson.loads(a.body)["data"]}
    assert {"after-0", "after-1", "after-2"} <= ids
    metrics = raw_http(port, "GET", b"/metrics", AUTH).body
    assert b"keymux_ledger_up 1" in metrics


def _nested(depth: int) -> bytes:
    """A JSON schema `depth` objects deep, as text (orjson itself will not encode one this deep)."""
    return b'{"type":"object","properties":{"a":' * depth + b'{"type":"string"}' + b"}}" * depth


def test_deeply_nested_json_schemas_are_a_400(threaded_stack: ThreadedStack) -> None:
    """A schema nested past what keymux re-encodes answers 400 in the client's shape, never 500
    (issue 17: ~126 levels answered 500, ~490 raised RecursionError)."""
    port = threaded_stack.port
    for depth in (130, 500):
        schema = _nested(depth)
        msgs = b'"model":"chat","messages":[{"role":"user","content":"hi"}]'
        long = b'"model":"chat","messages":[{"role":"user","content":"' + b"x" * 70_000 + b'"}]'  # a large body
        bodies = [b'{' + msgs + b',"tools":[{"type":"function","function":{"name":"f","parameters":' + schema
                  + b'}}]}',
                  b'{' + long + b',"tools":[{"type":"function","function":{"name":"f","parameters":' + schema
                  + b'}}]}',
                  b'{' + msgs + b',"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":'
                  + schema + b'}}}']
        for body in bodies:
            a = raw_http(port, "POST", b"/v1/chat/completions", AUTH, body)
            check(a, "openai")
            assert a.status == 400, (depth, a.status)
        gem = (b'{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"responseMimeType":"application/json",'
               b'"responseSchema":' + schema + b'}}')
        for model in (b"gpt", b"chat"):  # translated to OpenAI; passed through to Gemini
            a = raw_http(port, "POST", b"/v1beta/models/" + model + b":generateContent", AUTH, gem)
            check(a, "gemini")
            assert a.status == 400, (model, depth, a.status)
