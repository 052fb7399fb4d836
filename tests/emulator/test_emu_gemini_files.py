"""The emulator's Files API pages and downloads like Google's: pageSize default 10 and at most 100, an opaque
nextPageToken, 400 for a token it never gave; only generated files download, uploaded ones answer 400."""

from __future__ import annotations

import aiohttp
import orjson

from keymux.emulator import GeminiEmulator


async def _get(session: aiohttp.ClientSession, emu: GeminiEmulator, path: str, key: str = "k2",
               **params: str) -> tuple[int, bytes]:
    async with session.get(f"{emu.base_url}{path}", params=params, headers={"x-goog-api-key": key}) as resp:
        return resp.status, await resp.read()


async def test_files_list_pages_like_google(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    names = [gemini.files_api.add_generated("k2", b"x")["name"] for _ in range(130)]
    status, raw = await _get(session, gemini, "/v1beta/files")
    first = orjson.loads(raw)
    assert status == 200 and len(first["files"]) == 10 and first["nextPageToken"]
    seen, token = [], ""
    while True:
        status, raw = await _get(session, gemini, "/v1beta/files", pageSize="500",
                                 **({"pageToken": token} if token else {}))
        page = orjson.loads(raw)
        assert len(page["files"]) <= 100
        seen += [f["name"] for f in page["files"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == names
    status, raw = await _get(session, gemini, "/v1beta/files", pageToken="not-a-token")
    assert status == 400 and orjson.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
    status, raw = await _get(session, gemini, "/v1beta/files", key="pa")  # another project lists nothing
    assert status == 200 and orjson.loads(raw) == {}


async def test_only_generated_files_download(session: aiohttp.ClientSession, gemini: GeminiEmulator) -> None:
    made = gemini.files_api.add_generated("k2", b"video bytes", "video/mp4")
    assert made["source"] == "GENERATED" and made["downloadUri"].endswith(f"{made['name']}:download?alt=media")
    status, raw = await _get(session, gemini, f"/download/v1beta/{made['name']}:download", alt="media")
    assert (status, raw) == (200, b"video bytes")
    status, raw = await _get(session, gemini, f"/v1beta/{made['name']}:download", key="pa", alt="media")
    assert status == 403
    start = {"x-goog-api-key": "k2", "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
             "X-Goog-Upload-Header-Content-Length": "3"}
    async with session.post(f"{gemini.base_url}/upload/v1beta/files", data=b"{}", headers=start) as resp:
        url = resp.headers["X-Goog-Upload-URL"]
    async with session.post(url, data=b"abc", headers={"X-Goog-Upload-Command": "upload, finalize",
                                                       "X-Goog-Upload-Offset": "0"}) as resp:
        uploaded = orjson.loads(await resp.read())["file"]
    assert "downloadUri" not in uploaded and uploaded["source"] == "UPLOADED"
    status, raw = await _get(session, gemini, f"/v1beta/{uploaded['name']}:download", alt="media")
    assert status == 400 and orjson.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
