"""The Responses API's output items and response object, built from pivot parts (shared by the whole answer
and its stream, so both describe an answer the same way)."""

from __future__ import annotations

import orjson

from keymux.translate import pivot as p
from keymux.translate._json import Json
from keymux.translate.tool_calls import derive_call_id, join_tool_call_id

_INCOMPLETE = {p.LENGTH: "max_output_tokens", p.CONTENT_FILTER: "content_filter"}


def item_id(prefix: str, response_id: str, index: int) -> str:
    """The id of the index-th output item: unique as long as response ids are, and reproducible."""
    return f"{prefix}_{response_id.removeprefix('resp_')}_{index}"


def usage_doc(usage: p.Usage) -> Json:
    return {
        "input_tokens": usage.prompt,
        "input_tokens_details": {"cached_tokens": usage.cached, "cache_write_tokens": 0},  # Gemini reports none
        "output_tokens": usage.completion,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.total,
    }


def text_part(text: str) -> Json:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(iid: str, text: str | None, status: str) -> Json:
    return {"id": iid, "type": "message", "status": status, "role": "assistant",
            "content": [] if text is None else [text_part(text)]}


def reasoning_item(iid: str, text: str | None, signature: str | None) -> Json:
    item: Json = {"id": iid, "type": "reasoning",
                  "summary": [] if not text else [{"type": "summary_text", "text": text}]}
    if signature:
        item["encrypted_content"] = signature
    return item


def call_item(iid: str, part: p.Part, call_id: str, arguments: str, status: str) -> Json:
    return {"id": iid, "type": "function_call", "status": status, "arguments": arguments,
            "call_id": join_tool_call_id(call_id, part.signature), "name": part.name}


def arguments_of(part: p.Part) -> str:
    return orjson.dumps(part.args or {}).decode()


def call_id_of(part: p.Part, response_id: str, k: int) -> str:
    return part.call_id or derive_call_id(response_id, 0, k)


def status_of(finish: str | None, blocked: str | None) -> tuple[str, Json | None]:
    """(`status`, `incomplete_details`) of a finished answer."""
    reason = "content_filter" if blocked else _INCOMPLETE.get(finish or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def output_items(parts: list[p.Part], response_id: str) -> list[Json]:
    """Consecutive thinking parts make one reasoning item, consecutive text one message, each call an item.
    Generated media has no item here and is left out."""
    out: list[Json] = []
    calls = 0
    for part in parts:
        kind = part.kind
        last = out[-1] if out else None
        if kind == p.TEXT and part.text:
            if last is not None and last["type"] == "message":
                last["content"][0]["text"] += part.text
            else:
                out.append(message_item(item_id("msg", response_id, len(out)), part.text, "completed"))
        elif kind == p.THINKING:
            if last is not None and last["type"] == "reasoning" and "encrypted_content" not in last:
                if part.text:
                    summary = last["summary"]
                    if summary:
                        summary[0]["text"] += part.text
                    else:
                        summary.append({"type": "summary_text", "text": part.text})
                if part.signature:
                    last["encrypted_content"] = part.signature
            else:
                out.append(reasoning_item(item_id("rs", response_id, len(out)), part.text, part.signature))
        elif kind == p.TOOL_CALL:
            iid = item_id("fc", response_id, len(out))
            out.append(call_item(iid, part, call_id_of(part, response_id, calls), arguments_of(part), "completed"))
            calls += 1
    return out


def response_object(*, response_id: str, created: int, model: str, status: str, output: list[Json],
                    usage: Json | None, incomplete: Json | None = None, error: Json | None = None) -> Json:
    return {
        "id": response_id, "object": "response", "created_at": created, "status": status, "background": False,
        "error": error, "incomplete_details": incomplete, "instructions": None, "max_output_tokens": None,
        "model": model, "output": output, "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "store": False, "temperature": None,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": None,
        "truncation": "disabled", "usage": usage, "user": None, "metadata": {},
    }


def response_doc(resp: p.Response, *, model: str, response_id: str, created: int) -> Json:
    choice = resp.choices[0] if resp.choices else None
    parts: list[p.Part] = choice.parts if choice is not None else []
    status, incomplete = status_of(choice.finish if choice else None, resp.blocked)
    return response_object(response_id=response_id, created=created, model=model, status=status,
                           output=output_items(parts, response_id), incomplete=incomplete,
                           usage=usage_doc(resp.usage) if resp.usage is not None else None)

