"""Interactions created through one replica are followed up through another: the pin lives in Redis."""

from __future__ import annotations

from google import genai
from google.genai import types

from keymux.emulator import EmuKey

from .conftest import ClusterFactory, gemini_group

KEYS = ["ka-1111111111", "kb-2222222222", "kc-3333333333"]


def _client(base: str) -> genai.Client:
    return genai.Client(api_key="sk-master", http_options=types.HttpOptions(base_url=base, api_version="v1beta"))


async def test_a_chain_continues_on_the_owning_key_through_every_replica(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster({"model_list": gemini_group("flash", KEYS)}, {k: EmuKey() for k in KEYS})
    a, b = (_client(r.base) for r in cluster.replicas)
    first = await a.aio.interactions.create(model="flash", input="turn one")
    owner = next(k for k in KEYS if first.id in cluster.gemini.interactions.owned_by(k))
    previous = first.id
    for n, client in ((2, b), (3, a), (4, b)):
        for _ in range(2):  # unrelated first turns rotate the pool on both replicas
            await a.aio.interactions.create(model="flash", input="other")
            await b.aio.interactions.create(model="flash", input="other")
        turn = await client.aio.interactions.create(model="flash", input=f"turn {n}", previous_interaction_id=previous)
        assert turn.id in cluster.gemini.interactions.owned_by(owner)
        previous = turn.id
    polled = await b.aio.interactions.get(first.id)
    assert polled.id == first.id
    assert cluster.gemini.count(status=404) == 0
