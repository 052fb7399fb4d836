"""OpenAI wire shapes for the emulator: error bodies, rate-limit headers, chat answers.

Answers are deterministic: "Echo: <last user text>" (capped at MAX_ECHO chars), finish "stop",
or "length" (truncated) when max_tokens / max_completion_tokens is smaller; tools (and
tool_choice not "none") with a last message that is not a tool result -> one tool call to the
first (or the chosen) function with arguments {"query": <last user text>}; a last "tool" message
-> "Tool result: <its content>"; response_format json_object / json_schema -> '{"echo":"..."}'.
Tokens: prompt = max(1, chars // 4) of all message text; completion = max(1, chars // 4).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from keymux.emulator.gemini_answer import split_text
from keymux.emulator.quota import QuotaHit, go_duration

MAX_ECHO = 1000
MSG_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
MSG_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the basic auth username and "
    "password (i.e. Authorization: Basic ...). You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
MSG_INSUFFICIENT = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)
MSG_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
    "JSON. If you have trouble figuring out how to fix this, please contact us through our help center "
    "at help.openai.com.)"
)


MSG_CONTENT_POLICY = ("Your request was rejected as a result of our safety system. Your prompt may contain text "
                      "that is not allowed by our safety system.")


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def mask_key(key: str) -> str:
    """How OpenAI shows a wrong key: first 8 and last 4 characters, stars between."""
    if len(key) <= 12:
        return key[:3] + "***" + key[-3:] if len(key) > 6 else key
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def invalid_key_body(key: str) -> dict[str, Any]:
    return error_body(
        f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error", None, "invalid_api_key",
    )


def server_error_body() -> dict[str, Any]:
    return error_body(MSG_SERVER_ERROR, "server_error")


def rate_limit_body(hit: QuotaHit, model: str, org: str, requested: int) -> dict[str, Any]:
    if hit.kind == "tpm":
        what, type_ = "tokens per min (TPM)", "tokens"
    else:
        what, type_, requested = "requests per min (RPM)", "requests", 1
    msg = (
        f"Rate limit reached for {model} in organization {org} on {what}: Limit {hit.limit}, "
        f"Used {hit.used}, Requested {requested}. Please try again in {go_duration(hit.retry_after)}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    return error_body(msg, type_, None, "rate_limit_exceeded")


def retry_headers(seconds: float) -> dict[str, str]:
    return {
        "retry-after": str(max(1, math.ceil(seconds - 1e-9))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000 - 1e-6))),
    }


# ---------------------------------------------------------------- requests


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    media = 0
    for m in messages:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, list):
            for p in c:
                if isinstance(p, dict) and p.get("type") in ("image_url", "input_audio", "file"):
                    media += 85
        chars += len(text_of(c))
        for tc in m.get("tool_calls") or ():
            if isinstance(tc, dict):
                fn = tc.get("function")
                if isinstance(fn, dict):  # a malformed call is counted as nothing, not a crash (a 500)
                    chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return max(1, chars // 4) + media


def validate_chat(req: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(req, dict):
        return 400, error_body(MSG_BAD_JSON, "invalid_request_error")
    if not req.get("model"):
        return 400, error_body("you must provide a model parameter", "invalid_request_error")
    msgs = req.get("messages")
    if msgs is None:
        return 400, error_body("Missing required parameter: 'messages'.", "invalid_request_error",
                               "messages", "missing_required_parameter")
    if not isinstance(msgs, list):
        return 400, error_body(f"Invalid type for 'messages': expected an array, but got "
                               f"{type(msgs).__name__} instead.", "invalid_request_error", "messages",
                               "invalid_type")
    if not msgs:
        return 400, error_body("[] is too short - 'messages'", "invalid_request_error", "messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool", "function"):
            return 400, error_body(
                f"Invalid value for 'messages[{i}].role'.", "invalid_request_error",
                f"messages[{i}].role", "invalid_value",
            )
    return None


class ChatAnswer:
    __slots__ = ("text", "tool_name", "tool_args", "finish", "n", "prompt", "completion")

    def __init__(self, req: dict[str, Any]) -> None:
        msgs = req["messages"]
        self.prompt = prompt_tokens(msgs)
        user_text = ""
        for m in reversed(msgs):
            if m.get("role") == "user":
                user_text = text_of(m.get("content"))[:MAX_ECHO]
                break
        n = req.get("n") or 1
        self.n = n if isinstance(n, int) and 1 <= n <= 8 else 1
        self.tool_name: str | None = None
        self.tool_args = ""
        self.finish = "stop"
        last = msgs[-1]
        tools = [t.get("function", {}).get("name") for t in req.get("tools") or () if isinstance(t, dict)]
        tools = [t for t in tools if t]
        choice = req.get("tool_choice")
        if last.get("role") == "tool":
            self.text: str | None = "Tool result: " + text_of(last.get("content"))
        elif tools and choice != "none":
            if isinstance(choice, dict):
                self.tool_name = (choice.get("function") or {}).get("name") or tools[0]
            else:
                self.tool_name = tools[0]
            self.tool_args = orjson.dumps({"query": user_text}).decode()
            self.text = None
            self.finish = "tool_calls"
            self.completion = max(1, (len(self.tool_name) + len(self.tool_args)) // 4)
            return
        else:
            fmt = req.get("response_format")
            if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
                self.text = orjson.dumps({"echo": user_text}).decode()
            else:
                self.text = "Echo: " + user_text
        tokens = max(1, len(self.text) // 4)
        limit = req.get("max_completion_tokens") or req.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < tokens:
            self.text = self.text[: limit * 4]
            tokens = limit
            self.finish = "length"
        self.completion = tokens

    def usage(self) -> dict[str, Any]:
        completion = self.completion * self.n
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": completion,
            "total_tokens": self.prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
        }

    def message(self, call_id: str) -> dict[str, Any]:
        if self.tool_name is not None:
            return {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": call_id, "type": "function",
                                "function": {"name": self.tool_name, "arguments": self.tool_args}}],
                "refusal": None, "annotations": [],
            }
        return {"role": "assistant", "content": self.text, "refusal": None, "annotations": []}

    def completion_obj(self, cid: str, created: int, model: str, call_id: str) -> dict[str, Any]:
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [
                {"index": i, "message": self.message(call_id), "logprobs": None, "finish_reason": self.finish}
                for i in range(self.n)
            ],
            "usage": self.usage(), "service_tier": "default", "system_fingerprint": "fp_emulator",
        }

    def chunks(self, cid: str, created: int, model: str, call_id: str, include_usage: bool) -> list[dict[str, Any]]:
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "service_tier": "default", "system_fingerprint": "fp_emulator"}

        def chunk(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            c = dict(base)
            c["choices"] = [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]
            if include_usage:
                c["usage"] = None
            return c

        out = []
        for i in range(self.n):
            if self.tool_name is not None:
                out.append(chunk(i, {"role": "assistant", "content": None, "tool_calls": [
                    {"index": 0, "id": call_id, "type": "function",
                     "function": {"name": self.tool_name, "arguments": ""}}], "refusal": None}))
                for piece in split_text(self.tool_args):
                    out.append(chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            else:
                out.append(chunk(i, {"role": "assistant", "content": "", "refusal": None}))
                for piece in split_text(self.text or ""):
                    out.append(chunk(i, {"content": piece}))
            out.append(chunk(i, {}, self.finish))
        if include_usage:
            last = dict(base)
            last["choices"] = []
            last["usage"] = self.usage()
            out.append(last)
        return out
