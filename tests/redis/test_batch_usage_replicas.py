"""Two replicas sharing Redis: a batch's usage is written once, by whichever replica learns of its end
first; both see the batch pinned to its key in /admin/pins."""

from __future__ import annotations

from google import genai
from google.genai import types

from keymux.emulator import EmuKey
from keymux.emulator.gemini_caches_batches import BATCH_TAKES
from keymux.fingerprint import fingerprint

from .conftest import ClusterFactory, gemini_group

KEYS = ["ka-1111111111", "kb-2222222222"]


def _client(base: str) -> genai.Client:
    return genai.Client(api_key="sk-master", http_options=types.HttpOptions(base_url=base, api_version="v1beta"))


async def test_both_replicas_see_the_end_and_one_row_is_written(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster({"model_list": gemini_group("flash", KEYS)}, {k: EmuKey() for k in KEYS})
    a, b = cluster.replicas
    job = await _client(a.base).aio.batches.create(model="flash", src=[
        {"contents": [{"parts": [{"text": "one question"}], "role": "user"}]}])
    owner = next(k for k in KEYS if job.name in cluster.gemini.stateful.batches_of(k))
    pins = await b.admin_json("/admin/pins")
    by_key = {k["key"]: k for k in pins["data"]}
    assert pins["batches_running"] == 1
    assert by_key[fingerprint(owner)]["pinned"] == {"interactions": 0, "files": 0, "cachedContents": 0, "batches": 1}
    assert sum(k["total"] for k in by_key.values()) == 1
    cluster.clock.advance(BATCH_TAKES)  # ended; both replicas' watchers take a round
    for replica in (a, b):
        if replica.gateway.batches.polling is not None:
            await replica.gateway.batches.polling
    for replica in (b, a):
        got = await _client(replica.base).aio.batches.get(name=job.name)
        assert got.state.name == "JOB_STATE_SUCCEEDED"
    rows = []
    for replica in (a, b):
        await replica.gateway.ledger.flush()
        page = await replica.admin_json("/admin/requests?limit=50")
        rows += [r for r in page["data"] if r["operation"] == "batches.usage"]
    assert len(rows) == 1
    assert rows[0]["total_tokens"] > 0
    assert cluster.gemini.count(status=404) == 0
    assert (await a.admin_json("/admin/pins"))["batches_running"] == 0
    assert rows[0]["key"] == fingerprint(owner)
    await _client(b.base).aio.batches.delete(name=job.name)  # unpinned on every replica
    assert sum(k["total"] for k in (await a.admin_json("/admin/pins"))["data"]) == 0
