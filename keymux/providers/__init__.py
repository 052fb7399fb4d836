"""Upstream APIs: how each is addressed and authenticated, and what its answers mean (a Verdict).

`ANSWERED` / `ENDS_STREAM`: the one check, per provider, that an upstream 200 is a whole answer (a body cut
short or empty, or a stream that stops before its last event, is the upstream's failure, not an answer).
These run on every answer and stream event: they search with `bytes.find`, not `needle in payload`, which
first tries the needle as an integer and formats (then drops) a TypeError each time, ~1k instructions.
"""

from __future__ import annotations

from collections.abc import Callable

from keymux.providers import anthropic, gemini, openai

ANSWERED: dict[str, Callable[[bytes], bool]] = {"gemini": gemini.answered, "openai": openai.answered,
                                                "anthropic": anthropic.answered, "vertex_ai": gemini.answered}
ENDS_STREAM: dict[str, Callable[[bytes], bool]] = {"gemini": gemini.ends_stream, "openai": openai.ends_stream,
                                                   "anthropic": anthropic.ends_stream, "vertex_ai": gemini.ends_stream}
