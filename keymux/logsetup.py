"""Logging for the keymux process: one line per request must stay cheap at thousands per second.

The stock StreamHandler flushes stderr (one system call) for every line, and every LogRecord looks
up the thread, process and caller. keymux needs none of that bookkeeping, and writes through a
buffer that a background thread flushes five times a second (and at exit), so log lines are at
most 0.2 s late and cost a few microseconds.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FLUSH_EVERY = 0.2
_handler: BufferedStreamHandler | None = None  # set by configure(): the fast path for access lines
_stamp: tuple[int, str] = (0, "")


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that leaves flushing to a timer instead of doing it per record."""

    def flush(self) -> None:  # called by logging after every record: a no-op here
        pass

    def really_flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.flush()
            except ValueError:  # closed at interpreter exit
                pass


def _flusher(handler: BufferedStreamHandler, stop: threading.Event) -> None:
    while not stop.wait(FLUSH_EVERY):
        handler.really_flush()


def access(logger: logging.Logger, text: str) -> None:
    """The one line per request. Through `configure`'s handler it skips the LogRecord machinery
    (about 40 us per line under load, most of the log cost); otherwise it is an ordinary INFO record."""
    global _stamp
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _handler
    if handler is None:
        logger.info("%s", text)
        return
    now = time.time()
    second = int(now)
    if second != _stamp[0]:
        _stamp = (second, time.strftime("%H:%M:%S", time.localtime(now)))
    line = f"{_stamp[1]} INFO    {logger.name}: {text}\n"
    with handler.lock:  # type: ignore[union-attr]
        handler.stream.write(line)


def configure(debug: bool, stream: TextIO | None = None) -> BufferedStreamHandler:
    global _handler
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller lookup: keymux's format does not show it
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]
    target = stream or open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False,  # noqa: SIM115
                            encoding="utf-8", errors="replace")
    handler = BufferedStreamHandler(target)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    _handler = handler
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    _start_flusher(handler)
    os.register_at_fork(after_in_child=lambda: _start_flusher(handler))  # threads do not survive fork
    atexit.register(flush)
    return handler


def _start_flusher(handler: BufferedStreamHandler) -> None:
    threading.Thread(target=_flusher, args=(handler, threading.Event()), name="keymux-log-flush",
                     daemon=True).start()


def flush() -> None:
    """Write out what is buffered (at exit; forked workers end with os._exit, so they call this themselves)."""
    if _handler is not None:
        _handler.really_flush()
