"""Driving the docker CLI from tests: commands, and a container's log read as it comes."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("KEYMUX_TEST_IMAGE", "keymux:test")  # scripts/container-test builds it


async def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd)
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    return proc.returncode or 0, out.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Log:
    """The lines a process prints, collected as they arrive; `wait_for` returns once one holds `text`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def follow(cls, container: str) -> Log:
        proc = await asyncio.create_subprocess_exec("docker", "logs", "-f", container, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, text: str, timeout: float = 60) -> None:
        async def seen() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: text in self.text or self._reader.done())
        try:
            await asyncio.wait_for(seen(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {text!r} in {timeout} s; output so far:\n{self.text}") from None
        assert text in self.text, f"the process ended without printing {text!r}:\n{self.text}"

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        await self.proc.wait()
        await self._reader
