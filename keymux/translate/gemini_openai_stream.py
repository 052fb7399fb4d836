"""OpenAI chat.completion.chunk stream -> Gemini streamGenerateContent chunks (one object per request)."""

from __future__ import annotations

from typing import Any

from ._json import Json, get_dict, get_int
from .gemini_openai_response import finish_reason_to_gemini, message_parts, usage_to_gemini


class StreamToGemini:
    """Feed parsed OpenAI chunks in order; send every returned chunk to the Gemini client.

    Text, reasoning (as thought parts) and images go out as they arrive. Tool-call fragments are
    accumulated and sent whole, as functionCall parts, with the chunk that finishes their choice.
    The finishing chunk is held back until the usage chunk (ask the upstream for
    `stream_options.include_usage`) or `finish()`, so the last Gemini chunk carries both
    finishReason and usageMetadata, as Gemini's own streams do.
    """

    def __init__(self, *, model: str | None = None) -> None:
        self._model = model
        self._id: str | None = None
        self._usage: Json | None = None
        self._calls: dict[int, dict[int, Json]] = {}  # choice -> tool index -> {id, name, arguments}
        self._held: Json | None = None

    @property
    def usage(self) -> Json | None:
        """The upstream's OpenAI-shaped usage, once it arrived."""
        return self._usage

    def feed(self, chunk: Json) -> list[Json]:
        if not isinstance(chunk, dict):
            return []
        if self._model is None and isinstance(chunk.get("model"), str):
            self._model = chunk["model"]
        if self._id is None and isinstance(chunk.get("id"), str):
            self._id = chunk["id"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        candidates = []
        finishing = False
        for pos, choice in enumerate(chunk.get("choices") or ()):
            if not isinstance(choice, dict):
                continue
            index = get_int(choice, "index", pos)
            delta = get_dict(choice, "delta")
            self._collect_calls(index, delta.get("tool_calls"))
            parts = message_parts({k: v for k, v in delta.items() if k != "tool_calls"})
            reason = finish_reason_to_gemini(choice.get("finish_reason"))
            if reason is not None:
                parts.extend(self._drain_calls(index))
                finishing = True
            if parts or reason:
                candidate: Json = {"content": {"role": "model", "parts": parts}, "index": index}
                if reason:
                    candidate["finishReason"] = reason
                candidates.append(candidate)
        out = []
        if candidates:
            out.extend(self._release())
            gemini = self._wrap({"candidates": candidates})
            if finishing and not isinstance(usage, dict):
                self._held = gemini
            else:
                out.append(self._with_usage(gemini, usage))
        elif isinstance(usage, dict):
            held = self._held or self._wrap({})
            self._held = None
            out.append(self._with_usage(held, usage))
        return out

    def finish(self) -> list[Json]:
        """Chunks to send after the upstream stream ended: unfinished tool calls, the held final chunk."""
        out = self._release()
        leftovers = []
        for index in sorted(self._calls):
            parts = self._drain_calls(index)
            if parts:
                leftovers.append({"content": {"role": "model", "parts": parts}, "index": index})
        if leftovers:
            out.append(self._wrap({"candidates": leftovers}))
        return out

    def _collect_calls(self, index: int, fragments: Any) -> None:
        if not isinstance(fragments, list):
            return
        calls = self._calls.setdefault(index, {})
        for pos, fragment in enumerate(fragments):
            if not isinstance(fragment, dict):
                continue
            k = get_int(fragment, "index", pos)
            call = calls.setdefault(k, {"id": None, "name": "", "arguments": ""})
            if isinstance(fragment.get("id"), str) and fragment["id"]:
                call["id"] = fragment["id"]
            fn = fragment.get("function")
            if isinstance(fn, dict):
                if isinstance(fn.get("name"), str) and fn["name"]:
                    call["name"] = fn["name"]
                if isinstance(fn.get("arguments"), str):
                    call["arguments"] += fn["arguments"]

    def _drain_calls(self, index: int) -> list[Json]:
        calls = self._calls.pop(index, {})
        message = {
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(calls.items())
            ]
        }
        return message_parts(message)

    def _release(self) -> list[Json]:
        held, self._held = self._held, None
        return [held] if held is not None else []

    def _wrap(self, body: Json) -> Json:
        if self._model is not None:
            body["modelVersion"] = self._model
        if self._id is not None:
            body["responseId"] = self._id
        return body

    def _with_usage(self, gemini: Json, usage: Any) -> Json:
        metadata = usage_to_gemini(usage)
        if metadata is not None:
            gemini["usageMetadata"] = metadata
        return gemini
