"""The baseline's POST /v1/responses: the same bare proxy as its chat route (bench/baseline.py), translating
an OpenAI Responses request to Gemini generateContent and back through keymux's own codecs, so that the
Responses rows compare keymux with a floor doing the same translation."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import aiohttp
import orjson
from aiohttp import web

from keymux.translate.clients import openai_responses
from keymux.translate.clients.openai_responses_items import response_doc
from keymux.translate.providers import gemini
from keymux.translate.sse import SSEDecoder


def add_responses_route(app: web.Application, base: str, rotation: Iterator[str],
                        session_key: web.AppKey[aiohttp.ClientSession]) -> None:
    async def responses(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = body.get("model", "")
        stream = bool(body.get("stream"))
        data = gemini.encode_request(openai_responses.decode_request(body, drop_params=False, target=gemini),
                                     model, stream)
        headers = {"x-goog-api-key": next(rotation), "content-type": "application/json"}
        rid = f"resp_{os.urandom(12).hex()}"
        session = request.app[session_key]
        if not stream:
            async with session.post(f"{base}:generateContent", data=data, headers=headers) as up:
                raw = await up.read()
                if up.status != 200:
                    return web.Response(status=up.status, body=raw, content_type="application/json")
            out = response_doc(gemini.decode_response(raw), model=model, response_id=rid, created=int(time.time()))
            return web.Response(body=orjson.dumps(out), content_type="application/json")
        async with session.post(f"{base}:streamGenerateContent?alt=sse", data=data, headers=headers) as up:
            if up.status != 200:
                return web.Response(status=up.status, body=await up.read(), content_type="application/json")
            resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
            await resp.prepare(request)
            decoder, chunks = SSEDecoder(), gemini.StreamDecoder()
            encoder = openai_responses.StreamEncoder(model, response_id=rid)
            async for chunk in up.content.iter_any():
                out = [e for payload in decoder.feed(chunk) for e in encoder.feed(chunks.feed(payload))]
                if out:
                    await resp.write(b"".join(out))
            tail = [e for payload in decoder.flush() for e in encoder.feed(chunks.feed(payload))]
            await resp.write(b"".join(tail + encoder.finish()))
            await resp.write_eof()
            return resp

    app.router.add_post("/v1/responses", responses)
