"""The floor keymux is compared against: a bare aiohttp server + client that only translates an OpenAI chat
request to Gemini generateContent and back (streaming too), with keys taken round-robin.

No auth, no pool, no quota windows, no retries, no failover, no logging. Translation uses keymux's own pure
functions (keymux.translate): translating is the floor's job too, so the comparison isolates what the
gateway adds on top of it (routing, admission, failure handling, headers).

    python -m bench.baseline --port 8100 --upstream http://127.0.0.1:8001 --keys bench-key0,bench-key1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time

import aiohttp
import orjson
from aiohttp import web

from bench.baseline_responses import add_responses_route
from keymux.translate import embeddings as E
from keymux.translate.clients import openai_chat
from keymux.translate.providers import gemini
from keymux.translate.sse import SSEDecoder

UPSTREAM_MODEL = "gemini-2.5-flash"
EMBED_MODEL = "gemini-embedding-001"


def make_app(upstream: str, keys: list[str]) -> web.Application:
    app = web.Application()
    rotation = itertools.cycle(keys)
    base = f"{upstream.rstrip('/')}/v1beta/models/{UPSTREAM_MODEL}"
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def on_startup(app: web.Application) -> None:
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                                 skip_auto_headers=("User-Agent",))

    async def on_cleanup(app: web.Application) -> None:
        await app[session_key].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = body.get("model", "")
        stream = bool(body.get("stream"))
        data = gemini.encode_request(openai_chat.decode_request(body, drop_params=False, target=gemini), model,
                                     stream)
        headers = {"x-goog-api-key": next(rotation), "content-type": "application/json"}
        rid = f"chatcmpl-{os.urandom(12).hex()}"
        session = request.app[session_key]
        if not stream:
            async with session.post(f"{base}:generateContent", data=data, headers=headers) as up:
                raw = await up.read()
                if up.status != 200:
                    return web.Response(status=up.status, body=raw, content_type="application/json")
            out = openai_chat.response_doc(gemini.decode_response(raw), model=model, response_id=rid,
                                           created=int(time.time()))
            return web.Response(body=orjson.dumps(out), content_type="application/json")
        async with session.post(f"{base}:streamGenerateContent?alt=sse", data=data, headers=headers) as up:
            if up.status != 200:
                return web.Response(status=up.status, body=await up.read(), content_type="application/json")
            resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
            await resp.prepare(request)
            decoder = SSEDecoder()
            chunks = gemini.StreamDecoder()
            st = openai_chat.StreamEncoder(model, False, response_id=rid)
            async for chunk in up.content.iter_any():
                for payload in decoder.feed(chunk):
                    for event in st.feed(chunks.feed(payload)):
                        await resp.write(event)
            for payload in decoder.flush():
                for event in st.feed(chunks.feed(payload)):
                    await resp.write(event)
            for event in st.finish():  # ends in [DONE]
                await resp.write(event)
            await resp.write_eof()
            return resp

    async def embeddings(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        data = E.gemini_request(body, EMBED_MODEL)
        headers = {"x-goog-api-key": next(rotation), "content-type": "application/json"}
        url = f"{upstream.rstrip('/')}/v1beta/models/{EMBED_MODEL}:batchEmbedContents"
        async with request.app[session_key].post(url, data=data, headers=headers) as up:
            raw = await up.read()
            if up.status != 200:
                return web.Response(status=up.status, body=raw, content_type="application/json")
        out, _ = E.from_gemini(raw, body, body.get("model", ""), E.estimate_tokens(E.inputs(body)))
        return web.Response(body=out, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ready"}', content_type="application/json")

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/chat/completions", chat)
    add_responses_route(app, base, rotation, session_key)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/health/readiness", ready)
    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--upstream", required=True, help="base URL of the Gemini emulator")
    p.add_argument("--keys", required=True, help="comma-separated upstream keys, used round-robin")
    args = p.parse_args(argv)
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    app = make_app(args.upstream, [k for k in args.keys.split(",") if k])
    print(f"baseline on http://{args.host}:{args.port} -> {args.upstream}", file=sys.stderr, flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
