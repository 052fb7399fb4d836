"""Gemini streamGenerateContent chunks -> OpenAI chat.completion.chunk objects (one object per request)."""

from __future__ import annotations


from ._json import Json
from .openai_gemini_response import candidate_parts, finish_reason, read_parts, usage_from_gemini


class StreamToOpenAI:
    """Feed parsed Gemini stream chunks in order; send every returned chunk to the client.

    Each OpenAI chunk carries one choice. The first chunk of a choice has `delta.role`; tool calls
    arrive whole (Gemini does not split a functionCall), so each tool-call delta is complete.
    Chunks that hold an `error` object are the caller's to handle: they yield nothing here.
    A stream that ends without a finishReason gets no invented one.
    """

    def __init__(self, *, model: str, response_id: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._id = response_id
        self._created = created
        self._include_usage = include_usage
        self._usage: Json | None = None
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tools: dict[int, int] = {}  # choice -> tool calls emitted
        self._images: dict[int, int] = {}  # choice -> images emitted

    @property
    def usage(self) -> Json | None:
        """The last usage Gemini reported, OpenAI-shaped; None until one arrives."""
        return self._usage

    def feed(self, chunk: Json) -> list[Json]:
        if not isinstance(chunk, dict):
            return []
        usage = usage_from_gemini(chunk.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        candidates = chunk.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason") and 0 not in self._finished:
                self._finished.add(0)
                return [self._chunk(0, self._delta(0), "content_filter")]
            return []
        out = []
        for pos, cand in enumerate(candidates):
            if not isinstance(cand, dict):
                continue
            index = cand.get("index")
            choice = index if isinstance(index, int) else pos
            if choice in self._finished:
                continue
            tools_before = self._tools.get(choice, 0)
            images_before = self._images.get(choice, 0)
            pieces = read_parts(
                candidate_parts(cand),
                response_id=self._id,
                choice=choice,
                tools_before=tools_before,
                images_before=images_before,
            )
            delta = self._delta(choice)
            if pieces.reasoning:
                delta["reasoning_content"] = "".join(pieces.reasoning)
            if pieces.text:
                delta["content"] = "".join(pieces.text)
            if pieces.tool_calls:
                delta["tool_calls"] = pieces.tool_calls
                self._tools[choice] = tools_before + len(pieces.tool_calls)
            if pieces.images:
                delta["images"] = pieces.images
                self._images[choice] = images_before + len(pieces.images)
            reason = cand.get("finishReason")
            finish = None
            if isinstance(reason, str) and reason:
                finish = finish_reason(reason, has_tool_calls=self._tools.get(choice, 0) > 0)
                self._finished.add(choice)
            if delta or finish:
                out.append(self._chunk(choice, delta, finish))
        return out

    def finish(self) -> list[Json]:
        """Chunks to send after the upstream stream ended (the usage chunk, if asked for)."""
        if not self._include_usage:
            return []
        final = self._base()
        final["choices"] = []
        final["usage"] = self._usage
        return [final]

    def _delta(self, choice: int) -> Json:
        if choice in self._started:
            return {}
        self._started.add(choice)
        return {"role": "assistant"}

    def _base(self) -> Json:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, choice: int, delta: Json, finish: str | None) -> Json:
        out = self._base()
        out["choices"] = [{"index": choice, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if self._include_usage:
            out["usage"] = None
        return out
