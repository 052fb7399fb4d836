"""Local emulators of the upstream APIs keymux pools (Gemini native, OpenAI chat, Anthropic Messages).

Faithful on the wire (see /work/shared/reference/gemini-wire.md), deterministic, driven by an
injectable `Clock` so tests can move time instead of sleeping:

    from keymux.emulator import GeminiEmulator, OpenAIEmulator, EmuKey
    async with GeminiEmulator({"k1": EmuKey(rpm=2)}, clock=FakeClock()) as emu:
        ...  # emu.base_url, emu.calls, emu.count(...), emu.inject(...), emu.latency

Standalone: python -m keymux.emulator gemini --port 8001 --keys 'k1:rpm=5,rpd=50;bad:status=invalid'
"""

from keymux.emulator.anthropic import AnthropicEmulator
from keymux.emulator.gemini import GeminiEmulator
from keymux.emulator.openai import OpenAIEmulator
from keymux.emulator.quota import FAULTS, KEY_STATUSES, Call, EmuKey, next_pacific_midnight

__all__ = [
    "AnthropicEmulator",
    "Call",
    "EmuKey",
    "FAULTS",
    "GeminiEmulator",
    "KEY_STATUSES",
    "OpenAIEmulator",
    "next_pacific_midnight",
]
