"""google-genai `files.download` and the merged lists' pages through keymux: a download reaches the key
that owns the file and is streamed; `files.list` / `caches.list` pagers walk every key's pages and see each
item once; keymux's page tokens are its own, and a bad one is a 400 in Google's shape."""

from __future__ import annotations

import io
import os

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors, types

from keymux.emulator import EmuKey
from keymux.fingerprint import fingerprint

from .conftest import gemini_group
from .rss import RssWatch

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]
MB = 1024 * 1024


async def _stack(make_stack):
    return await make_stack({"model_list": gemini_group("flash", KEYS)}, gemini_keys={k: EmuKey() for k in KEYS})


async def _get(stack, path: str, **params: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.base}{path}", params=params, headers={"x-goog-api-key": "sk-master"}) as resp:
            return resp.status, orjson.loads(await resp.read() or b"{}")


async def test_a_generated_file_downloads_from_its_own_key(make_stack) -> None:
    stack = await _stack(make_stack)
    data = os.urandom(3 * MB + 17)
    made = stack.gemini.files_api.add_generated("kb-2222222222", data, "video/mp4")
    client = stack.genai()
    found = [f async for f in await client.aio.files.list() if f.download_uri]  # the list teaches keymux the key
    assert [f.name for f in found] == [made["name"]]
    assert await client.aio.files.download(file=found[0]) == data
    sink = io.BytesIO()
    await client.aio.files.download(file=made["name"], destination=sink)
    assert sink.getvalue() == data
    assert stack.gemini.count("kb-2222222222", endpoint="files.download") == 2
    assert stack.gemini.count(status=403) == 0


async def test_a_download_is_streamed_through_not_held(make_stack) -> None:
    stack = await _stack(make_stack)
    size = 60 * MB
    made = stack.gemini.files_api.add_generated("ka-1111111111", b"\1" * size, "video/mp4")
    await _get(stack, "/v1beta/files")
    watch = RssWatch()
    got = 0
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.base}/download/v1beta/{made['name']}:download", params={"alt": "media"},
                            headers={"x-goog-api-key": "sk-master"}) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
            async for piece in resp.content.iter_chunked(256 * 1024):
                got += len(piece)
    watch.stop()
    assert got == size
    assert watch.grown < 20 * MB, f"RSS grew {(watch.grown) / MB:.1f} MB while {size // MB} MB passed through"


async def test_an_uploaded_file_cannot_be_downloaded_and_google_says_so(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    up = await client.aio.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.files.download(file=up.name)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "generated" in caught.value.message
    for prefix in ("/v1beta", "/download/v1beta"):
        status, body = await _get(stack, f"{prefix}/files/nosuchfile:download", alt="media")
        assert status == 404 and body["error"]["status"] == "NOT_FOUND", prefix
    status, body = await _get(stack, f"/v1beta/{up.name}:download")
    assert status == 400 and "alt=media" in body["error"]["message"]


async def test_the_files_pager_sees_every_file_of_every_key_exactly_once(make_stack) -> None:
    stack = await _stack(make_stack)
    made = {stack.gemini.files_api.add_generated(k, b"x", "text/plain")["name"]: k for k in KEYS for _ in range(9)}
    client = stack.genai()
    for size in (None, 4, 100):  # Google's default page (10), small pages, one page
        config = types.ListFilesConfig(page_size=size) if size else None
        listed = [f.name async for f in await client.aio.files.list(config=config)]
        assert sorted(listed) == sorted(made) and len(listed) == 27
    status, first = await _get(stack, "/v1beta/files", pageSize="4")
    assert len(first["files"]) == 4 and first["nextPageToken"]
    for f in first["files"]:
        assert f["keymuxKey"] == fingerprint(made[f["name"]])
    assert not any(k in str(first) for k in KEYS)
    assert stack.gemini.count(status=400) == 0


async def test_a_bad_page_token_is_a_400_in_googles_shape(make_stack) -> None:
    stack = await _stack(make_stack)
    for k in KEYS:
        for _ in range(3):
            stack.gemini.files_api.add_generated(k, b"x", "text/plain")
    _, first = await _get(stack, "/v1beta/files", pageSize="2")
    token = first["nextPageToken"]
    status, nxt = await _get(stack, "/v1beta/files", pageSize="2", pageToken=token)
    assert status == 200 and len(nxt["files"]) == 2
    altered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    for bad in (altered, "garbage", "%%%"):
        status, body = await _get(stack, "/v1beta/files", pageToken=bad)
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT", bad
    status, body = await _get(stack, "/v1beta/cachedContents", pageToken=token)  # another list's token
    assert status == 400 and body["error"]["code"] == 400
    status, body = await _get(stack, "/v1beta/files", pageSize="many")
    assert status == 400 and "pageSize" in body["error"]["message"]


async def test_the_caches_pager_follows_pages_across_keys(make_stack) -> None:
    stack = await _stack(make_stack)
    client = stack.genai()
    names = {(await client.aio.caches.create(model="flash", config=types.CreateCachedContentConfig(
        contents=[f"document {n} " * 40], ttl="600s"))).name for n in range(7)}
    assert len({o for n in names for o in KEYS if n in stack.gemini.stateful.caches_of(o)}) > 1
    listed = [c.name async for c in await client.aio.caches.list(config=types.ListCachedContentsConfig(page_size=2))]
    assert sorted(listed) == sorted(names)


async def test_an_upload_goes_to_the_group_its_header_names(make_stack) -> None:
    doc = {"model_list": gemini_group("chat", KEYS[:2]) + gemini_group("flash", KEYS[2:])}
    stack = await make_stack(doc, gemini_keys={k: EmuKey() for k in KEYS})
    plain = stack.genai()
    routed = genai.Client(api_key="sk-master", http_options=types.HttpOptions(
        base_url=stack.base, api_version="v1beta", headers={"x-keymux-model": "flash"}))
    up = await routed.aio.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    assert up.name in stack.gemini.files_api.owned_by(KEYS[2])
    answer = await plain.aio.models.generate_content(model="flash", contents=[up, "read it"])
    assert answer.text
    elsewhere = await plain.aio.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    assert elsewhere.name not in stack.gemini.files_api.owned_by(KEYS[2])  # no header: the first Gemini group
    with pytest.raises(errors.APIError) as caught:
        await plain.aio.models.generate_content(model="flash", contents=[elsewhere, "read it"])
    assert "belongs to key" in caught.value.message
    with pytest.raises(errors.ClientError) as unknown:
        await genai.Client(api_key="sk-master", http_options=types.HttpOptions(
            base_url=stack.base, api_version="v1beta", headers={"x-keymux-model": "nope"})).aio.files.upload(
            file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    assert unknown.value.code == 404
    assert stack.gemini.count(status=403) == 0


async def test_a_chunk_without_a_length_is_counted_against_the_limit(make_stack) -> None:
    stack = await make_stack({"model_list": gemini_group("flash", KEYS),
                              "general_settings": {"max_upload_size_mb": 1}}, gemini_keys={k: EmuKey() for k in KEYS})

    async def body():  # sent chunked: no Content-Length to check up front
        for _ in range(8):
            yield b"\0" * (256 * 1024)

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.base}/upload/v1beta/files", data=b'{"file":{}}', headers={
                "x-goog-api-key": "sk-master", "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start", "Content-Type": "application/json"}) as resp:
            url = resp.headers["X-Goog-Upload-URL"]
        async with http.post(url, data=body(), headers={"X-Goog-Upload-Command": "upload, finalize",
                                                        "X-Goog-Upload-Offset": "0"}) as resp:
            doc = orjson.loads(await resp.read())
    assert resp.status == 413 and doc["error"]["code"] == 413
    assert not any(stack.gemini.files_api.owned_by(k) for k in KEYS)
