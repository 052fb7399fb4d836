"""Writing a relay StreamReply to the client, and letting go of the key if the client leaves."""

from __future__ import annotations

from aiohttp import web

from keymux.attempt import StreamReply


async def send_stream(request: web.Request, reply: StreamReply) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={
        "content-type": "text/event-stream", "cache-control": "no-cache", **reply.headers})
    try:
        await resp.prepare(request)
        await resp.write(b"".join(reply.first))
        async for chunk in reply.rest:
            await resp.write(chunk)
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away: closing `rest` below cancels the upstream call and frees the key
    finally:
        await reply.rest.aclose()  # type: ignore[attr-defined]
        await reply.end()  # frees the key even if `rest` never started (the client left before the first write)
    return resp
