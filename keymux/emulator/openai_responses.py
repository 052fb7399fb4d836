"""The OpenAI emulator's `POST /v1/responses`: the answer and the named event stream, in OpenAI's wire format
(platform.openai.com/docs/api-reference/responses and .../responses-streaming), written independently of
keymux's own codec so that tests compare two readings of the format.

Deterministic answers, like chat's (openai_wire.ChatAnswer):
  - the last input item a function_call_output: "Tool result: <output>";
  - function tools and tool_choice not "none": one function_call {"query": <last user text>};
  - text.format json_object / json_schema: '{"echo":"<last user text>"}';
  - otherwise "Echo: <last user text>", cut at max_output_tokens (status incomplete);
  - reasoning.effort (not "none"): a reasoning item first, with a summary when reasoning.summary is set and
    encrypted_content when include holds "reasoning.encrypted_content".
Refused with a 400 like OpenAI does: a missing input, built-in tools it lacks, previous_response_id of a
response it never made.
"""

from __future__ import annotations

from typing import Any

import orjson

from keymux.emulator.openai_wire import MAX_ECHO, error_body

THOUGHT = "Thinking about it..."
REASONING_TOKENS = 16
ENCRYPTED = "gAAAAABemulatorEncryptedReasoning=="


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(c.get("text", "") for c in content
                        if isinstance(c, dict) and c.get("type") in ("input_text", "output_text"))
    return ""


def validate(req: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(req, dict):
        return 400, error_body("Invalid request body.", "invalid_request_error")
    inp = req.get("input")
    if inp is None or inp == "" or inp == []:
        return 400, error_body("Missing required parameter: 'input'.", "invalid_request_error", "input",
                               "missing_required_parameter")
    prev = req.get("previous_response_id")
    if prev is not None:
        return 400, error_body(f"Previous response with id '{prev}' not found.", "invalid_request_error",
                               "previous_response_id", "previous_response_not_found")
    for i, tool in enumerate(req.get("tools") or ()):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not tool.get("name"):
            return 400, error_body(f"Invalid value for 'tools[{i}]': only function tools are emulated.",
                                   "invalid_request_error", f"tools[{i}]", "invalid_value")
    return None


class ResponsesAnswer:
    __slots__ = ("prompt", "text", "call", "reasoning", "encrypted", "summary", "incomplete", "completion")

    def __init__(self, req: dict[str, Any]) -> None:
        inp = req["input"]
        items = [{"type": "message", "role": "user", "content": inp}] if isinstance(inp, str) else list(inp)
        chars = len(req.get("instructions") or "")
        user_text = ""
        for item in items:
            if not isinstance(item, dict):
                continue
            content = item.get("content") if item.get("type", "message") == "message" else item.get("output")
            chars += len(_text(content)) + len(str(item.get("arguments") or ""))
            if item.get("type", "message") == "message" and item.get("role") == "user":
                user_text = _text(content)[:MAX_ECHO]
        self.prompt = max(1, chars // 4)
        reasoning = req.get("reasoning") or {}
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        self.reasoning = effort is not None and effort != "none"
        self.summary = bool(self.reasoning and reasoning.get("summary"))
        self.encrypted = self.reasoning and "reasoning.encrypted_content" in (req.get("include") or ())
        self.call: tuple[str, str] | None = None
        self.text: str | None = None
        self.incomplete = False
        last = items[-1] if items else {}
        tools = [t["name"] for t in req.get("tools") or ()]
        choice = req.get("tool_choice")
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            self.text = "Tool result: " + _text(last.get("output"))
        elif tools and choice != "none":
            name: str = choice["name"] if isinstance(choice, dict) and choice.get("name") in tools else tools[0]
            args = orjson.dumps({"query": user_text}).decode()
            self.call = (name, args)
            self.completion = max(1, (len(name) + len(args)) // 4)
            return
        else:
            fmt = (req.get("text") or {}).get("format") or {}
            if fmt.get("type") in ("json_object", "json_schema"):
                self.text = orjson.dumps({"echo": user_text}).decode()
            else:
                self.text = "Echo: " + user_text
        tokens = max(1, len(self.text) // 4)
        limit = req.get("max_output_tokens")
        if isinstance(limit, int) and 0 < limit < tokens:
            self.text, tokens, self.incomplete = self.text[: limit * 4], limit, True
        self.completion = tokens

    def usage(self) -> dict[str, Any]:
        reasoning = REASONING_TOKENS if self.reasoning else 0
        output = self.completion + reasoning
        return {"input_tokens": self.prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": self.prompt + output}

    def items(self, seq: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.reasoning:
            item: dict[str, Any] = {"id": f"rs_emu{seq:016x}", "type": "reasoning",
                                    "summary": [{"type": "summary_text", "text": THOUGHT}] if self.summary else []}
            if self.encrypted:
                item["encrypted_content"] = ENCRYPTED
            out.append(item)
        if self.call is not None:
            out.append({"id": f"fc_emu{seq:016x}", "type": "function_call", "status": "completed",
                        "arguments": self.call[1], "call_id": f"call_emu{seq:016x}", "name": self.call[0]})
        else:
            out.append({"id": f"msg_emu{seq:016x}", "type": "message", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                                     "text": self.text or ""}]})
        return out

    def response(self, req: dict[str, Any], rid: str, created: int, model: str, seq: int, *,
                 done: bool = True) -> dict[str, Any]:
        status = ("incomplete" if self.incomplete else "completed") if done else "in_progress"
        return {
            "id": rid, "object": "response", "created_at": created, "status": status, "background": False,
            "error": None, "incomplete_details": {"reason": "max_output_tokens"} if done and self.incomplete else None,
            "instructions": req.get("instructions"), "max_output_tokens": req.get("max_output_tokens"),
            "model": model, "output": self.items(seq) if done else [], "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": (req.get("reasoning") or {}).get("effort"),
                                                        "summary": (req.get("reasoning") or {}).get("summary")},
            "store": req.get("store", True), "temperature": req.get("temperature", 1.0),
            "text": req.get("text") or {"format": {"type": "text"}}, "tool_choice": req.get("tool_choice", "auto"),
            "tools": req.get("tools") or [], "top_p": req.get("top_p", 1.0), "truncation": "disabled",
            "usage": self.usage() if done else None, "user": None, "metadata": req.get("metadata") or {},
        }

    def events(self, req: dict[str, Any], rid: str, created: int, model: str, seq: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        def emit(kind: str, **fields: Any) -> None:
            out.append({"type": kind, "sequence_number": len(out), **fields})

        emit("response.created", response=self.response(req, rid, created, model, seq, done=False))
        emit("response.in_progress", response=self.response(req, rid, created, model, seq, done=False))
        for index, item in enumerate(self.items(seq)):
            iid = item["id"]
            if item["type"] == "reasoning":
                emit("response.output_item.added", output_index=index,
                     item={"id": iid, "type": "reasoning", "summary": []})
                for s, part in enumerate(item["summary"]):
                    where = {"item_id": iid, "output_index": index, "summary_index": s}
                    emit("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
                    emit("response.reasoning_summary_text.delta", **where, delta=part["text"])
                    emit("response.reasoning_summary_text.done", **where, text=part["text"])
                    emit("response.reasoning_summary_part.done", **where, part=part)
            elif item["type"] == "function_call":
                emit("response.output_item.added", output_index=index,
                     item={**item, "status": "in_progress", "arguments": ""})
                args = item["arguments"]
                for k in range(0, len(args), 8):  # OpenAI sends arguments in small fragments
                    emit("response.function_call_arguments.delta", item_id=iid, output_index=index,
                         delta=args[k:k + 8])
                emit("response.function_call_arguments.done", item_id=iid, output_index=index, name=item["name"],
                     arguments=args)
            else:
                where = {"item_id": iid, "output_index": index, "content_index": 0}
                emit("response.output_item.added", output_index=index,
                     item={**item, "status": "in_progress", "content": []})
                emit("response.content_part.added", **where,
                     part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""})
                text = item["content"][0]["text"]
                words = text.split(" ")
                for k, word in enumerate(words):
                    emit("response.output_text.delta", **where, delta=word if k == 0 else " " + word, logprobs=[])
                emit("response.output_text.done", **where, text=text, logprobs=[])
                emit("response.content_part.done", **where, part=item["content"][0])
            emit("response.output_item.done", output_index=index, item=item)
        final = self.response(req, rid, created, model, seq)
        emit("response.incomplete" if self.incomplete else "response.completed", response=final)
        return out


def frame(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
