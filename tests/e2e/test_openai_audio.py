"""POST /v1/audio/speech and /v1/audio/transcriptions through the openai SDK, over Gemini keys (TTS models, audio
input) and OpenAI keys (passthrough)."""

from __future__ import annotations

import io
import wave

import pytest
from openai import APIStatusError, BadRequestError

from keymux.emulator import EmuKey
from keymux.emulator.gemini_wire import speech_pcm, wav_bytes

from .conftest import StackFactory, gemini_group

TTS = "gemini-2.5-flash-preview-tts"


def openai_group(name: str, model: str) -> list[dict[str, object]]:
    return [{"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_key": "sk-a"}}]


async def _rows(stack: object) -> list[dict[str, object]]:
    gw = stack.gateway  # type: ignore[attr-defined]
    await gw.ledger.flush()
    return await gw.ledger.recent(50, float("inf"))


async def test_speech_as_wav_from_a_gemini_tts_model(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("voice", ["k1"], model=TTS)}, gemini_keys={"k1": EmuKey()})
    answer = await stack.openai().audio.speech.with_raw_response.create(
        model="voice", voice="alloy", input="Hello from keymux", response_format="wav")
    assert answer.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(answer.content)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.readframes(w.getnframes()) == speech_pcm("Hello from keymux")  # the upstream's PCM, unchanged
    (row,) = await _rows(stack)
    assert row["outcome"] == "ok" and row["completion_tokens"] > 0 and row["value"] > 0


async def test_speech_as_pcm_and_mp3(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("voice", ["k1"], model=TTS)}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    pcm = await client.audio.speech.create(model="voice", voice="Kore", input="abc", response_format="pcm")
    assert pcm.content == speech_pcm("abc")
    mp3 = await client.audio.speech.with_raw_response.create(model="voice", voice="nova", input="abc")  # mp3 default
    assert mp3.headers["content-type"] == "audio/mpeg"
    assert mp3.content[:2] in (b"\xff\xf3", b"\xff\xfb", b"\xff\xf2") or mp3.content[:3] == b"ID3"


async def test_speech_refuses_what_gemini_cannot_do_before_spending_quota(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("voice", ["k1"], model=TTS)}, gemini_keys={"k1": EmuKey()})
    client = stack.openai()
    for kwargs, param in (({"voice": "nobody"}, "voice"), ({"voice": "alloy", "response_format": "opus"},
                                                           "response_format"),
                          ({"voice": "alloy", "speed": 1.5}, "speed")):
        with pytest.raises(BadRequestError) as err:
            await client.audio.speech.create(model="voice", input="hi", **kwargs)  # type: ignore[arg-type]
        assert err.value.body["param"] == param
    assert stack.gemini.count() == 0


async def test_speech_fails_over_to_another_key(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("voice", ["k1", "k2"], model=TTS)},
                             gemini_keys={"k1": EmuKey(), "k2": EmuKey()})
    stack.gemini.inject(None, "503")
    answer = await stack.openai().audio.speech.create(model="voice", voice="echo", input="x", response_format="pcm")
    assert answer.content == speech_pcm("x") and stack.gemini.count(status=503) == 1


async def test_transcription_over_a_gemini_model_with_audio_input(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("listen", ["k1"])}, gemini_keys={"k1": EmuKey()})
    audio = wav_bytes(speech_pcm("some speech"))
    client = stack.openai()
    answer = await client.audio.transcriptions.create(model="listen", file=("talk.wav", audio), language="en")
    assert answer.text == f"Heard {len(audio)} bytes of audio/wav"  # the bytes reached Gemini whole, as audio
    text = await client.audio.transcriptions.create(model="listen", file=("talk.mp3", audio),
                                                    response_format="text")
    assert text.strip() == f"Heard {len(audio)} bytes of audio/mp3"
    with pytest.raises(BadRequestError) as err:
        await client.audio.transcriptions.create(model="listen", file=("notes.txt", b"hello"))
    assert err.value.body["param"] == "file"
    with pytest.raises(BadRequestError) as err:
        await client.audio.transcriptions.create(model="listen", file=("a.wav", audio), response_format="srt")
    assert err.value.body["param"] == "response_format"


async def test_uploads_over_the_body_limit_are_refused_with_413(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": gemini_group("listen", ["k1"]),
                              "general_settings": {"max_request_size_mb": 1}}, gemini_keys={"k1": EmuKey()})
    async with stack.openai() as client:
        with pytest.raises(APIStatusError) as err:
            await client.audio.transcriptions.create(model="listen", file=("big.wav", bytes(2 * 1024 * 1024)))
    assert err.value.status_code == 413 and err.value.body["type"] == "invalid_request_error"
    assert stack.gemini.count() == 0


async def test_openai_keys_pass_speech_and_transcriptions_through(make_stack: StackFactory) -> None:
    stack = await make_stack({"model_list": openai_group("voice", "tts-1") + openai_group("listen", "whisper-1")},
                             openai_keys={"sk-a": EmuKey()})
    client = stack.openai()
    speech = await client.audio.speech.create(model="voice", voice="alloy", input="hey", response_format="pcm")
    assert speech.content == speech_pcm("hey")
    answer = await client.audio.transcriptions.create(model="listen", file=("talk.wav", b"RIFF0000WAVE", "audio/wav"))
    assert answer.text == "Heard 12 bytes of audio/wav"
    assert stack.openai_emu.count(endpoint="audio.transcriptions", status=200) == 1
