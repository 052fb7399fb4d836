"""The token emulator checks a JWT-bearer grant as Google does, and the Gemini emulator's Vertex mode takes
only its tokens, on Vertex's paths, answering Vertex's error bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from google.auth import crypt, jwt

from keymux.clock import FakeClock
from keymux.emulator import EmuKey
from keymux.emulator.google_token import GRANT_TYPE, SCOPE, TokenEmulator
from keymux.emulator.vertex import MSG_SHARED_CAPACITY, MSG_UNAUTHENTICATED, VertexEmulator

T0 = 1_795_716_000.0
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture
async def emus() -> AsyncIterator[tuple[TokenEmulator, VertexEmulator]]:
    clock = FakeClock(T0)
    tokens = TokenEmulator(clock=clock)
    await tokens.serve()
    vertex = VertexEmulator(tokens, {"proj-a": EmuKey(rpm=1), "proj-b": EmuKey()}, clock=clock)
    await vertex.serve()
    yield tokens, vertex
    await vertex.close()
    await tokens.close()


def grant(doc: dict[str, Any], **claims: Any) -> dict[str, str]:
    now = int(time.time())
    signer = crypt.RSASigner.from_service_account_info(doc)
    payload = {"iss": doc["client_email"], "scope": SCOPE, "aud": doc["token_uri"], "iat": now, "exp": now + 3600,
               **claims}
    return {"grant_type": GRANT_TYPE, "assertion": jwt.encode(signer, payload).decode()}


async def post_token(tokens: TokenEmulator, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(tokens.token_uri, data=form) as resp:
        return resp.status, await resp.json()


async def test_a_good_grant_gets_googles_token_answer(emus: tuple[TokenEmulator, VertexEmulator]) -> None:
    tokens, _ = emus
    status, body = await post_token(tokens, grant(tokens.account("proj-a")))
    assert status == 200 and set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"].startswith("ya29.")


@pytest.mark.parametrize("claims,error,description", [
    ({"aud": "https://example.com/token"}, "invalid_grant", "Invalid OAuth scope or ID token audience provided."),
    ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope", "Invalid OAuth scope"),
    ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_grant", "Token must be a short-lived"),
    ({"exp": int(time.time()) + 7200}, "invalid_grant", "Token must be a short-lived"),
    ({"iss": "nobody@proj-a.iam.gserviceaccount.com"}, "invalid_grant", "account not found"),
])
async def test_a_bad_grant_is_refused_in_googles_shape(emus: tuple[TokenEmulator, VertexEmulator],
                                                       claims: dict[str, Any], error: str, description: str) -> None:
    tokens, _ = emus
    status, body = await post_token(tokens, grant(tokens.account("proj-a"), **claims))
    assert status == 400 and body["error"] == error and description in body["error_description"]


async def test_a_grant_signed_by_another_key_fails_its_signature(emus: tuple[TokenEmulator, VertexEmulator]) -> None:
    tokens, _ = emus
    doc, other = tokens.account("proj-a"), tokens.account("proj-b")
    status, body = await post_token(tokens, grant({**doc, "private_key": other["private_key"]}))
    assert (status, body) == (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    status, body = await post_token(tokens, {"grant_type": "client_credentials", "assertion": "x"})
    assert status == 400 and body["error"] == "unsupported_grant_type"


async def vertex_call(vertex: VertexEmulator, token: str | None, project: str = "proj-a",
                      method: str = "generateContent") -> tuple[int, Any]:
    url = (f"{vertex.base_url}/v1/projects/{project}/locations/us-central1/publishers/google/models/"
           f"gemini-2.5-flash:{method}")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.post(url, json=BODY, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_vertex_mode_takes_the_token_emulators_tokens_until_they_expire(
        emus: tuple[TokenEmulator, VertexEmulator]) -> None:
    tokens, vertex = emus
    _, answer = await post_token(tokens, grant(tokens.account("proj-a")))
    token = answer["access_token"]
    status, body = await vertex_call(vertex, token)
    assert status == 200 and body["candidates"][0]["content"]["parts"][0]["text"] == "Echo: hi"
    for bad in (None, "AIzaSyNotAnAccessToken000000000000000000"):
        status, body = await vertex_call(vertex, bad)
        assert status == 401 and body["error"]["message"] == MSG_UNAUTHENTICATED
    tokens.clock.advance(3600)  # type: ignore[attr-defined]
    status, body = await vertex_call(vertex, token, method="countTokens")
    assert status == 401 and body["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"


async def test_vertex_mode_denies_other_projects_and_answers_vertex_429s(
        emus: tuple[TokenEmulator, VertexEmulator]) -> None:
    tokens, vertex = emus
    _, answer = await post_token(tokens, grant(tokens.account("proj-a")))
    token = answer["access_token"]
    status, body = await vertex_call(vertex, token, project="proj-b")  # not granted on proj-b
    assert status == 403 and body["error"]["details"][0]["reason"] == "IAM_PERMISSION_DENIED"
    assert (await vertex_call(vertex, token))[0] == 200
    status, body = await vertex_call(vertex, token)  # proj-a allows one a minute
    assert status == 429 and body["error"]["message"].startswith(
        "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model")
    vertex.inject("proj-a", "bare429")
    tokens.clock.advance(61)  # type: ignore[attr-defined]
    status, body = await vertex_call(vertex, token)
    assert status == 429 and body == [{"error": {"code": 429, "message": MSG_SHARED_CAPACITY,
                                                 "status": "RESOURCE_EXHAUSTED"}}]
