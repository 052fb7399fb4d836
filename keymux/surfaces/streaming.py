"""Writing a StreamReply to the client, and letting go of the key if the client leaves."""

from __future__ import annotations

from aiohttp import web

from keymux.request import StreamReply


async def send_stream(request: web.Request, reply: StreamReply) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={
        "content-type": "text/event-stream", "cache-control": "no-cache", **reply.headers})
    sent = False
    try:
        await resp.prepare(request)
        await resp.write(b"".join(reply.first))
        async for chunk in reply.rest:
            await resp.write(chunk)
        sent = True
    except ConnectionError:
        pass  # the client went away: ending below abandons the upstream call and frees the key
    finally:
        if not sent:  # the client left (or the handler was cancelled): recorded as cancelled, nobody blamed
            await reply.end(False)
        await reply.rest.aclose()  # type: ignore[attr-defined]
        await reply.end()  # frees the key even if `rest` never started (the client left before the first write)
    return resp
