"""Gemini error bodies match gemini-wire.md exactly."""

from __future__ import annotations

from typing import Any

import aiohttp

from keymux.emulator import GeminiEmulator
from keymux.emulator.gemini_wire import project_number

MODEL = "gemini-2.5-flash"
ERRORINFO = "type.googleapis.com/google.rpc.ErrorInfo"


async def test_missing_key(post: Any) -> None:
    assert await post(None) == (403, {"error": {
        "code": 403,
        "message": "Method doesn't allow unregistered callers (callers without established identity). "
                   "Please use API key or other form of API consumer identity to call this API.",
        "status": "PERMISSION_DENIED"}})


def _invalid(msg: str) -> dict[str, Any]:
    return {"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT", "details": [
        {"@type": ERRORINFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}}]}}


async def test_unknown_and_invalid_keys(post: Any, gemini: GeminiEmulator) -> None:
    expected = _invalid("API key not valid. Please pass a valid API key.")
    assert await post("no-such-key") == (400, expected)
    assert await post("bad") == (400, expected)
    assert await post("nf") == (400, _invalid("API Key not found. Please pass a valid API key."))
    assert gemini.count(kind="invalid_key") == 3
    assert gemini.count(status=400) == 3


async def test_key_query_param(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    url = f"{gemini.base_url}/v1beta/models/{MODEL}:generateContent?key=k2"
    async with session.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}) as r:
        assert r.status == 200
    async with session.post(url.replace("k2", "bad"), json={"contents": [{"parts": [{"text": "x"}]}]}) as r:
        assert r.status == 400
    assert [c.key for c in gemini.calls] == ["k2", "bad"]


async def test_leaked(post: Any) -> None:
    assert await post("leaked") == (403, {"error": {
        "code": 403, "message": "Your API key was reported as leaked. Please use another API key.",
        "status": "PERMISSION_DENIED"}})


async def test_suspended(post: Any) -> None:
    status, body = await post("susp")
    assert status == 403
    assert body == {"error": {
        "code": 403, "message": "Permission denied: Consumer 'api_key:susp' has been suspended.",
        "status": "PERMISSION_DENIED", "details": [
            {"@type": ERRORINFO, "reason": "CONSUMER_SUSPENDED", "domain": "googleapis.com",
             "metadata": {"consumer": f"projects/{project_number('proj-s')}",
                          "service": "generativelanguage.googleapis.com"}}]}}


async def test_service_disabled(post: Any, gemini: GeminiEmulator) -> None:
    status, body = await post("disabled")
    assert status == 403
    err = body["error"]
    assert err["status"] == "PERMISSION_DENIED" and err["code"] == 403
    assert err["message"].startswith("Generative Language API has not been used in project")
    info = err["details"][0]
    assert info["@type"] == ERRORINFO and info["reason"] == "SERVICE_DISABLED"
    assert info["metadata"]["service"] == "generativelanguage.googleapis.com"
    assert gemini.count(kind="service_disabled") == 1


async def test_location(post: Any) -> None:
    assert await post("loc") == (400, {"error": {
        "code": 400, "message": "User location is not supported for the API use.",
        "status": "FAILED_PRECONDITION"}})


async def test_unknown_model(post: Any, gemini: GeminiEmulator) -> None:
    assert await post("k2", model="gemini-x") == (404, {"error": {
        "code": 404,
        "message": "models/gemini-x is not found for API version v1beta, or is not supported for "
                   "generateContent. Call ListModels to see the list of available models and their "
                   "supported methods.",
        "status": "NOT_FOUND"}})
    status, body = await post("k2", model="gemini-x", method="streamGenerateContent", query="?alt=sse")
    assert status == 404 and "supported for generateContent" in body["error"]["message"]
    status, body = await post("k2", model="gemini-embedding-001")  # not a generate model
    assert status == 404
    assert gemini.count(kind="not_found") == 3


async def test_malformed_json(post: Any) -> None:
    status, body = await post("k2", body=b"{not json")
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["message"] == "Invalid JSON payload received. Unexpected token."
    assert body["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


async def test_missing_and_empty_contents(post: Any) -> None:
    status, body = await post("k2", body={"generationConfig": {}})
    assert (status, body["error"]) == (400, {
        "code": 400, "message": "* GenerateContentRequest.contents: contents is not specified\n",
        "status": "INVALID_ARGUMENT"})
    status, body = await post("k2", body={"contents": [{"role": "user", "parts": []}]})
    assert status == 400 and "contents.parts must not be empty" in body["error"]["message"]
    status, body = await post("k2", body={"contents": [{"role": "user", "parts": [{}]}]})
    assert status == 400 and "required oneof field 'data'" in body["error"]["message"]


async def test_unknown_fields_and_roles(post: Any, gemini: GeminiEmulator) -> None:
    status, body = await post("k2", body={"contents": [{"parts": [{"text": "x"}]}], "temperature": 1})
    assert status == 400
    assert body["error"]["message"] == 'Invalid JSON payload received. Unknown name "temperature": Cannot find field.'
    status, body = await post("k2", body={"contents": [{"parts": [{"text": "x"}]}],
                                          "generationConfig": {"max_tokens": 5}})
    assert status == 400
    assert body["error"]["message"] == ('Invalid JSON payload received. Unknown name "max_tokens" at '
                                        "'generation_config': Cannot find field.")
    assert body["error"]["details"][0]["fieldViolations"][0]["field"] == "generation_config"
    status, body = await post("k2", body={"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]})
    assert (status, body["error"]["message"]) == (400, "Please use a valid role: user, model.")
    # snake_case names are accepted like Google's JSON parser does
    status, _ = await post("k2", body={"contents": [{"parts": [{"text": "x"}]}],
                                       "generation_config": {"max_output_tokens": 5},
                                       "system_instruction": {"parts": [{"text": "be brief"}]}})
    assert status == 200
    gemini.strict_fields = False
    status, _ = await post("k2", body={"contents": [{"parts": [{"text": "x"}]}], "temperature": 1})
    assert status == 200


async def test_gemini3_requires_thought_signature(post: Any, gemini: GeminiEmulator) -> None:
    history = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 20}}}]},
        ]
    }
    status, body = await post("k2", body=history, model="gemini-3-pro-preview")
    assert status == 400
    assert body["error"]["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "`default_api:get_weather` , position 2" in body["error"]["message"]
    assert (await post("k2", body=history, model="gemini-2.5-flash"))[0] == 200
    history["contents"][1]["parts"][0]["thoughtSignature"] = "c2ln"
    status, body = await post("k2", body=history, model="gemini-3-pro-preview")
    assert status == 200
    assert body["candidates"][0]["content"]["parts"][0]["text"] == 'Tool result: {"t":20}'


async def test_unknown_method(post: Any) -> None:
    status, body = await post("k2", method="frobnicate")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
