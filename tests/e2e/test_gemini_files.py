"""google-genai `files.upload` through keymux: the upload URL points back at keymux, chunks reach the key
that started the upload, and later calls naming the file go to that key only (another project's key
would get 403)."""

from __future__ import annotations

import io
import os

import aiohttp
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from .conftest import gemini_group
from .rss import RssWatch

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]
MB = 1024 * 1024


async def _stack(make_stack, **general):
    doc = {"model_list": gemini_group("flash", KEYS)}
    if general:
        doc["general_settings"] = general
    return await make_stack(doc, gemini_keys={k: EmuKey() for k in KEYS})


def _owner(stack, name: str) -> str:
    return next(k for k in KEYS if name in stack.gemini.files_api.owned_by(k))


async def test_upload_of_20_mb_then_generate_with_it_lands_on_the_owning_key(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    data = os.urandom(20 * MB)
    up = await client.aio.files.upload(file=io.BytesIO(data), config={"mime_type": "application/pdf",
                                                                      "display_name": "big"})
    assert up.name.startswith("files/") and up.size_bytes == 20 * MB and up.state == "ACTIVE"
    owner = _owner(stack, up.name)
    for n in range(6):  # other traffic rotates; every call naming the file still reaches its owner
        await client.aio.models.generate_content(model="flash", contents="unrelated")
        answer = await client.aio.models.generate_content(model="flash", contents=[
            types.Part.from_uri(file_uri=up.uri, mime_type="application/pdf"), f"summarise {n}"])
        assert answer.text
    assert stack.gemini.count(status=403) == 0
    assert stack.gemini.count(owner, endpoint="generateContent") >= 6
    got = await client.aio.files.get(name=up.name)
    assert got.name == up.name
    listed = [f.name async for f in await client.aio.files.list()]
    assert listed == [up.name]
    await client.aio.files.delete(name=up.name)
    assert not stack.gemini.files_api.owned_by(owner)


async def test_list_is_merged_across_keys_and_tagged_with_each_files_key(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    names = [(await client.aio.files.upload(file=io.BytesIO(b"x" * 10), config={"mime_type": "text/plain"})).name
             for _ in range(6)]
    assert len({_owner(stack, n) for n in names}) > 1  # the starts rotated over the keys
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.base}/v1beta/files", headers={"x-goog-api-key": "sk-master"}) as resp:
            doc = orjson.loads(await resp.read())
    assert sorted(f["name"] for f in doc["files"]) == sorted(names)
    for f in doc["files"]:
        assert f["keymuxKey"] == fingerprint(_owner(stack, f["name"]))
    assert "ka-1111111111" not in str(doc)


async def test_an_upload_over_the_configured_limit_is_refused_in_googles_shape(make_stack) -> None:
    stack = await _stack(make_stack, max_upload_size_mb=1)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}/upload/v1beta/files", data=b'{"file":{}}', headers={
                "x-goog-api-key": "sk-master", "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": str(2 * MB),
                "Content-Type": "application/json"}) as resp:
            body = orjson.loads(await resp.read())
    assert resp.status == 413 and body["error"]["code"] == 413
    assert stack.gemini.count(endpoint="files.upload") == 0


async def test_a_100_mb_upload_is_streamed_through_not_held(make_stack) -> None:
    stack = await _stack(make_stack)
    size, piece = 100 * MB, b"\0" * (64 * 1024)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}/upload/v1beta/files", data=b'{"file":{"displayName":"huge"}}', headers={
                "x-goog-api-key": "sk-master", "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": str(size),
                "Content-Type": "application/json"}) as resp:
            url = resp.headers["X-Goog-Upload-URL"]
        assert url.startswith(stack.base)

        async def body():
            for _ in range(size // len(piece)):
                yield piece

        watch = RssWatch()
        async with http.post(url, data=body(), headers={"X-Goog-Upload-Command": "upload, finalize",
                                                        "X-Goog-Upload-Offset": "0",
                                                        "Content-Length": str(size)}) as resp:
            doc = orjson.loads(await resp.read())
            assert resp.headers["X-Goog-Upload-Status"] == "final"
        watch.stop()
    assert doc["file"]["sizeBytes"] == str(size)
    assert watch.grown < 20 * MB, f"RSS grew {(watch.grown) / MB:.1f} MB while 100 MB passed through"


async def test_the_emulator_refuses_another_projects_file_as_google_does(make_stack) -> None:
    stack = await _stack(make_stack)
    up = await stack.genai().aio.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    other = next(k for k in KEYS if k != _owner(stack, up.name))
    base = stack.gemini.base_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1beta/{up.name}", headers={"x-goog-api-key": other}) as resp:
            assert resp.status == 403
            assert orjson.loads(await resp.read())["error"]["status"] == "PERMISSION_DENIED"
        body = {"contents": [{"parts": [{"fileData": {"fileUri": up.uri, "mimeType": "text/plain"}}]}]}
        async with http.post(f"{base}/v1beta/models/gemini-2.5-flash:generateContent", data=orjson.dumps(body),
                             headers={"x-goog-api-key": other, "content-type": "application/json"}) as resp:
            assert resp.status == 403


async def test_a_generate_naming_a_file_of_a_key_outside_its_group_is_a_400_that_says_so(make_stack) -> None:
    doc = {"model_list": gemini_group("flash", KEYS[:2]) + gemini_group("other", KEYS[2:])}
    stack = await make_stack(doc, gemini_keys={k: EmuKey() for k in KEYS})
    client = stack.genai()
    up = await client.aio.files.upload(file=io.BytesIO(b"%PDF-1.4 tiny"), config={"mime_type": "application/pdf"})
    owner = fingerprint(_owner(stack, up.name))
    calls = stack.gemini.count(endpoint="generateContent")
    with pytest.raises(genai_errors.ClientError) as caught:
        await client.aio.models.generate_content(model="other", contents=[
            types.Part.from_uri(file_uri=up.uri, mime_type="application/pdf"), "summarise"])
    assert caught.value.code == 400
    assert f"belongs to key {owner}, which does not serve model group 'other'" in caught.value.message
    assert "that key serves: flash" in caught.value.message
    assert stack.gemini.count(endpoint="generateContent") == calls  # no key was asked: none spent quota
