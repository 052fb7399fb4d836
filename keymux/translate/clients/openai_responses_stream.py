"""Pivot deltas -> the Responses API's named stream events, in the order OpenAI sends them:

    response.created, response.in_progress,
    per output item: response.output_item.added,
      message:   response.content_part.added, response.output_text.delta..., response.output_text.done,
                 response.content_part.done
      reasoning: response.reasoning_summary_part.added, response.reasoning_summary_text.delta...,
                 response.reasoning_summary_text.done, response.reasoning_summary_part.done
      function_call: response.function_call_arguments.delta, response.function_call_arguments.done
    response.output_item.done; then response.completed (or response.incomplete) with usage.

A stream that breaks after its first event ends in `error` and `response.failed`. Every event carries
`type` and a `sequence_number`. Only the first choice is streamed (the API has no `n`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from keymux.ids import new_id
from keymux.translate import pivot as p
from keymux.translate._json import Json
from keymux.translate.clients.openai_responses_items import (
    arguments_of,
    call_id_of,
    call_item,
    item_id,
    message_item,
    reasoning_item,
    response_object,
    status_of,
    text_part,
    usage_doc,
)
from keymux.translate.sse import decode_all, sse_event


class _Open:
    """The output item being streamed: a message or a reasoning item (calls arrive whole)."""

    __slots__ = ("kind", "id", "index", "text", "signature")

    def __init__(self, kind: str, iid: str, index: int) -> None:
        self.kind = kind
        self.id = iid
        self.index = index
        self.text = ""
        self.signature: str | None = None


class StreamEncoder:
    __slots__ = ("usage", "_model", "_id", "_created", "_seq", "_started", "_open", "_output", "_calls",
                 "_finish", "_blocked")

    def __init__(self, model: str, include_usage: bool = True, *, response_id: str | None = None,
                 created: int | None = None) -> None:
        self.usage: p.Usage | None = None
        self._model = model
        self._id = response_id or f"resp_{new_id()}"
        self._created = int(time.time()) if created is None else created
        self._seq = 0
        self._started = False
        self._open: _Open | None = None
        self._output: list[Json] = []  # finished items, for the final response object
        self._calls = 0
        self._finish: str | None = None
        self._blocked: str | None = None

    # -- the StreamEncoder protocol: SSE bytes ------------------------------------------------------

    def feed(self, delta: p.Delta) -> list[bytes]:
        choices = delta.choices
        current = self._open
        if len(choices) == 1 and current is not None and current.kind == "message" and not delta.blocked:
            choice = choices[0]
            parts = choice.parts
            if (choice.index == 0 and choice.finish is None and len(parts) == 1 and parts[0].kind == p.TEXT
                    and parts[0].text):  # more text of the open message: its one delta event, as events() makes it
                if delta.usage is not None:
                    self.usage = delta.usage
                text = parts[0].text
                current.text += text
                seq = self._seq
                self._seq = seq + 1
                return [sse_event(orjson.dumps({"type": _TEXT_DELTA, "sequence_number": seq, "item_id": current.id,
                                                "output_index": current.index, "content_index": 0, "delta": text,
                                                "logprobs": []}), event=_TEXT_DELTA_NAME)]
        return [_frame(e) for e in self.events(delta)]

    def finish(self) -> list[bytes]:
        return [_frame(e) for e in self.final_events()]

    def error(self, status: int, message: str) -> bytes:
        return b"".join(_frame(e) for e in self.error_events(status, message))

    # -- the same as event objects (golden fixtures compare these) ---------------------------------

    def events(self, delta: p.Delta) -> list[Json]:
        out = self._start()
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.blocked:
            self._blocked = delta.blocked
        for choice in delta.choices:
            if choice.index != 0:
                continue
            for part in choice.parts:
                self._part(part, out)
            if choice.finish is not None:
                self._finish = choice.finish
        return out

    def final_events(self) -> list[Json]:
        out = self._start()
        self._close(out)
        status, incomplete = status_of(self._finish, self._blocked)
        response = self._response(status, incomplete=incomplete)
        out.append(self._event(f"response.{status}", response=response))
        return out

    def error_events(self, status: int, message: str) -> list[Json]:
        out = self._start()
        code = "rate_limit_exceeded" if status == 429 else "server_error"
        out.append(self._event("error", code=code, message=message, param=None))
        out.append(self._event("response.failed",
                               response=self._response("failed", error={"code": code, "message": message})))
        return out

    # -- items ------------------------------------------------------------------------------------

    def _start(self) -> list[Json]:
        if self._started:
            return []
        self._started = True
        return [self._event("response.created", response=self._response("in_progress")),
                self._event("response.in_progress", response=self._response("in_progress"))]

    def _part(self, part: p.Part, out: list[Json]) -> None:
        kind = part.kind
        current = self._open
        if kind == p.TEXT:
            if not part.text:
                return
            if current is None or current.kind != "message":
                current = self._begin("message", out)
                out.append(self._event("response.content_part.added", item_id=current.id,
                                       output_index=current.index, content_index=0, part=text_part("")))
            current.text += part.text
            out.append(self._event("response.output_text.delta", item_id=current.id, output_index=current.index,
                                   content_index=0, delta=part.text, logprobs=[]))
        elif kind == p.THINKING:
            if current is None or current.kind != "reasoning" or current.signature:
                current = self._begin("reasoning", out)
            if part.text:
                if not current.text:
                    out.append(self._event("response.reasoning_summary_part.added", item_id=current.id,
                                           output_index=current.index, summary_index=0,
                                           part={"type": "summary_text", "text": ""}))
                current.text += part.text
                out.append(self._event("response.reasoning_summary_text.delta", item_id=current.id,
                                       output_index=current.index, summary_index=0, delta=part.text))
            if part.signature:
                current.signature = part.signature
        elif kind == p.TOOL_CALL:
            self._close(out)
            index = len(self._output)
            iid, call_id = item_id("fc", self._id, index), call_id_of(part, self._id, self._calls)
            arguments = arguments_of(part)
            self._calls += 1
            out.append(self._event("response.output_item.added", output_index=index,
                                   item=call_item(iid, part, call_id, "", "in_progress")))
            out.append(self._event("response.function_call_arguments.delta", item_id=iid, output_index=index,
                                   delta=arguments))
            out.append(self._event("response.function_call_arguments.done", item_id=iid, output_index=index,
                                   name=part.name, arguments=arguments))
            item = call_item(iid, part, call_id, arguments, "completed")
            self._output.append(item)
            out.append(self._event("response.output_item.done", output_index=index, item=item))

    def _begin(self, kind: str, out: list[Json]) -> _Open:
        self._close(out)
        index = len(self._output)
        opened = self._open = _Open(kind, item_id("msg" if kind == "message" else "rs", self._id, index), index)
        item = message_item(opened.id, None, "in_progress") if kind == "message" else reasoning_item(opened.id, None,
                                                                                                   None)
        out.append(self._event("response.output_item.added", output_index=opened.index, item=item))
        return opened

    def _close(self, out: list[Json]) -> None:
        current = self._open
        if current is None:
            return
        self._open = None
        where: dict[str, Any] = {"item_id": current.id, "output_index": current.index}
        if current.kind == "message":
            out.append(self._event("response.output_text.done", **where, content_index=0, text=current.text,
                                   logprobs=[]))
            out.append(self._event("response.content_part.done", **where, content_index=0,
                                   part=text_part(current.text)))
            item = message_item(current.id, current.text, "completed")
        else:
            if current.text:
                summary = {"type": "summary_text", "text": current.text}
                out.append(self._event("response.reasoning_summary_text.done", **where, summary_index=0,
                                       text=current.text))
                out.append(self._event("response.reasoning_summary_part.done", **where, summary_index=0,
                                       part=summary))
            item = reasoning_item(current.id, current.text, current.signature)
        self._output.append(item)
        out.append(self._event("response.output_item.done", output_index=current.index, item=item))

    def _response(self, status: str, *, incomplete: Json | None = None, error: Json | None = None) -> Json:
        done = status != "in_progress"
        usage = usage_doc(self.usage) if done and self.usage is not None else None
        return response_object(response_id=self._id, created=self._created, model=self._model, status=status,
                               output=list(self._output) if done else [], usage=usage, incomplete=incomplete,
                               error=error)

    def _event(self, kind: str, **fields: Any) -> Json:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event


_TEXT_DELTA = "response.output_text.delta"
_TEXT_DELTA_NAME = _TEXT_DELTA.encode()


def _frame(event: Json) -> bytes:
    return sse_event(orjson.dumps(event), event=event["type"].encode())


# == cache: a whole answer <-> its stream ==========================================================


def stream_from_body(body: bytes, include_usage: bool = True) -> list[bytes]:
    """A stored response object replayed as the events that would have built it (same response id)."""
    doc = orjson.loads(body)
    encoder = StreamEncoder(doc.get("model", ""), response_id=doc.get("id"), created=doc.get("created_at", 0))
    parts: list[p.Part] = []
    for item in doc.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            parts.extend(p.Part(p.TEXT, c.get("text", "")) for c in item.get("content") or ())
        elif kind == "reasoning":
            text = "".join(s.get("text", "") for s in item.get("summary") or ())
            parts.append(p.Part(p.THINKING, text, item.get("encrypted_content")))
        elif kind == "function_call":
            parts.append(p.Part(p.TOOL_CALL, name=item.get("name", ""), call_id=item.get("call_id"),
                                args=orjson.loads(item.get("arguments") or "{}")))
    details = doc.get("incomplete_details") or {}
    finish = {"max_output_tokens": p.LENGTH, "content_filter": p.CONTENT_FILTER}.get(details.get("reason") or "")
    usage = doc.get("usage")
    if usage:
        encoder.usage = p.Usage(prompt=usage.get("input_tokens", 0), completion=usage.get("output_tokens", 0),
                                total=usage.get("total_tokens", 0),
                                reasoning=(usage.get("output_tokens_details") or {}).get("reasoning_tokens", 0),
                                cached=(usage.get("input_tokens_details") or {}).get("cached_tokens", 0))
    return encoder.feed(p.Delta([p.Choice(0, parts, finish)])) + encoder.finish()


def body_from_stream(events: list[bytes], usage: p.Usage | None = None) -> bytes | None:
    """The response object of the stream's `response.completed` event; None unless the stream completed."""
    for payload in reversed(decode_all(events)):
        event = orjson.loads(payload)
        if event.get("type") in ("response.completed", "response.incomplete"):
            return orjson.dumps(event["response"])
    return None
