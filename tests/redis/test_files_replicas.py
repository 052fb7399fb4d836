"""Files through two replicas sharing Redis: an OpenAI-style upload on one is used in chat on the other (its
record and pin live in Redis), and a merged list's page token from one replica is continued by the other."""

from __future__ import annotations

import aiohttp
import orjson

from keymux.emulator import EmuKey

from .conftest import ClusterFactory, gemini_group

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]


async def test_an_upload_through_one_replica_is_used_through_the_other(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster({"model_list": gemini_group("flash", KEYS)}, {k: EmuKey() for k in KEYS})
    a, b = (r.openai() for r in cluster.replicas)
    made = await a.files.create(file=("notes.txt", b"some notes", "text/plain"), purpose="user_data")
    name = "files/" + made.id.removeprefix("file-")
    owner = next(k for k in KEYS if name in cluster.gemini.files_api.owned_by(k))
    for n in range(3):
        await b.chat.completions.create(model="flash", messages=[{"role": "user", "content": f"other {n}"}])
        await b.chat.completions.create(model="flash", messages=[{"role": "user", "content": [
            {"type": "text", "text": "read it"}, {"type": "file", "file": {"file_id": made.id}}]}])
    assert cluster.gemini.files_api.used == [(name, "text/plain", owner)] * 3
    assert (await b.files.retrieve(made.id)).filename == "notes.txt"


async def test_a_page_token_from_one_replica_continues_on_the_other(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster({"model_list": gemini_group("flash", KEYS)}, {k: EmuKey() for k in KEYS})
    made = {cluster.gemini.files_api.add_generated(k, b"x", "text/plain")["name"] for k in KEYS for _ in range(4)}
    seen: list[str] = []
    token = ""
    async with aiohttp.ClientSession() as http:
        for turn in range(20):
            base = cluster.replicas[turn % 2].base
            params = {"pageSize": "5", **({"pageToken": token} if token else {})}
            async with http.get(f"{base}/v1beta/files", params=params, headers={"x-goog-api-key": "sk-master"}) as r:
                assert r.status == 200
                page = orjson.loads(await r.read())
            seen += [f["name"] for f in page.get("files", [])]
            token = page.get("nextPageToken", "")
            if not token:
                break
    assert sorted(seen) == sorted(made)
