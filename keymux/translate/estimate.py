"""Cheap prompt-size estimates, run on every request before a key is chosen.

Rule: ceil(text characters / 4) + 4 per message (+3 priming) + 258 per image or file (what Gemini charges
for an image up to 384 px; larger ones cost more) + ~32 tokens per second of audio, guessed from its
size at 16 kB/s. Text is counted by walking the body, never by serialising it.
"""

from __future__ import annotations

from typing import Any

from .media import base64_size

IMAGE_TOKENS = 258
MESSAGE_OVERHEAD = 4
PRIMING = 3
_AUDIO_BYTES_PER_TOKEN = 500  # 16 kB/s compressed audio, 32 tokens/s


def _chars(value: Any) -> int:
    """Characters of every string (keys included) in a JSON value: tool schemas, arguments."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + _chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    return 1 if value is not None else 0


def _total(chars: int, media: int, messages: int) -> int:
    return -(-chars // 4) + media + MESSAGE_OVERHEAD * messages + PRIMING


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of an OpenAI chat.completions request."""
    chars = media = count = 0
    messages = body.get("messages")
    for msg in messages if isinstance(messages, list) else ():
        if not isinstance(msg, dict):
            continue
        count += 1
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
            if len(msg) == 2:  # {"role", "content"}: the common message has nothing else to count
                continue
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, str):
                    chars += len(part)
                elif not isinstance(part, dict):
                    continue
                elif part.get("type") == "image_url":
                    media += IMAGE_TOKENS
                elif part.get("type") == "input_audio":
                    audio = part.get("input_audio")
                    data = audio.get("data") if isinstance(audio, dict) else None
                    media += base64_size(data) // _AUDIO_BYTES_PER_TOKEN if isinstance(data, str) else 0
                elif part.get("type") == "file":
                    media += IMAGE_TOKENS
                else:
                    text = part.get("text") or part.get("refusal")
                    chars += len(text) if isinstance(text, str) else 0
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str):
            chars += len(reasoning)
        if msg.get("tool_calls"):
            chars += _chars(msg["tool_calls"])
    for key in ("tools", "response_format"):
        if body.get(key):
            chars += _chars(body[key])
    return _total(chars, media, count)


def estimate_gemini_prompt_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of a Gemini generateContent request."""
    chars = media = count = 0
    contents = body.get("contents")
    turns = list(contents) if isinstance(contents, list) else []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict):
        turns.append(system)
    for turn in turns:
        if not isinstance(turn, dict):
            continue
        count += 1
        parts = turn.get("parts")
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                chars += len(text)
                continue
            blob = part.get("inlineData") or part.get("inline_data") or part.get("fileData") or part.get("file_data")
            if isinstance(blob, dict):
                mime = blob.get("mimeType") or blob.get("mime_type")
                data = blob.get("data")
                if isinstance(mime, str) and mime.startswith("audio/") and isinstance(data, str):
                    media += base64_size(data) // _AUDIO_BYTES_PER_TOKEN
                else:
                    media += IMAGE_TOKENS
                continue
            for value in part.values():
                if isinstance(value, dict):  # functionCall, functionResponse, executableCode, ...
                    chars += _chars(value)
    if body.get("tools"):
        chars += _chars(body["tools"])
    return _total(chars, media, count)
