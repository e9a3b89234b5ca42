"""Streaming helpers: chunked copies, checksums on the fly and thread-backed pipes.

Memory stays flat: data moves in ``CHUNK``-sized pieces, never whole files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from typing import IO, Protocol

from plantops.backup.errors import CorruptArchive

CHUNK = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


def copy_stream(src: Readable, dst: Writable, chunk: int = CHUNK) -> int:
    """Copy until EOF in chunks; return the number of bytes copied."""
    total = 0
    while True:
        block = src.read(chunk)
        if not block:
            return total
        dst.write(block)
        total += len(block)


class HashingReader:
    """Reads through ``raw`` and checks size and sha256 against the recorded ones at EOF."""

    def __init__(self, raw: Readable, name: str, sha256: str | None, size: int | None) -> None:
        self.raw = raw
        self.name = name
        self.expected = sha256
        self.expected_size = size
        self.digest = hashlib.sha256()
        self.size = 0
        self.done = False

    def read(self, size: int = -1, /) -> bytes:
        block = self.raw.read(CHUNK if size is None or size < 0 else size)
        if block:
            self.digest.update(block)
            self.size += len(block)
        elif not self.done:
            self.done = True
            self.check()
        return block

    def check(self) -> None:
        if self.expected_size is not None and self.size != self.expected_size:
            raise CorruptArchive(
                f"object {self.name} is truncated or padded: read {self.size} bytes,"
                f" catalog recorded {self.expected_size}"
            )
        if self.expected is not None and self.digest.hexdigest() != self.expected:
            raise CorruptArchive(
                f"object {self.name} is corrupted: sha256 {self.digest.hexdigest()}"
                f" does not match the recorded {self.expected}"
            )

    def close(self) -> None:
        close = getattr(self.raw, "close", None)
        if close is not None:
            close()


class PipedReader:
    """Plaintext side of a pipe fed by ``pump(pipe_writer)`` running in a thread.

    At EOF the thread is joined and its exception, if any, is raised here: a reader
    never sees a silently shortened stream.
    """

    def __init__(self, pump: Callable[[IO[bytes]], None]) -> None:
        rfd, wfd = os.pipe()
        self._r = os.fdopen(rfd, "rb", buffering=0)
        self._w = os.fdopen(wfd, "wb")
        self._error: BaseException | None = None

        def run() -> None:
            try:
                pump(self._w)
            except BaseException as exc:
                self._error = exc
            finally:
                with contextlib.suppress(OSError):
                    self._w.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def read(self, size: int = -1, /) -> bytes:
        block = self._r.read(CHUNK if size is None or size < 0 else size)
        if not block:
            self._finish()
        return block

    def _finish(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._r.close()
        self._thread.join()


class PipedWriter:
    """Writer whose bytes are consumed by ``drain(pipe_reader)`` in a thread."""

    def __init__(self, drain: Callable[[IO[bytes]], None]) -> None:
        rfd, wfd = os.pipe()
        self._r = os.fdopen(rfd, "rb")
        self._w = os.fdopen(wfd, "wb", buffering=0)
        self._error: BaseException | None = None
        self._closed = False

        def run() -> None:
            try:
                drain(self._r)
            except BaseException as exc:
                self._error = exc
            finally:
                self._r.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def write(self, data: bytes, /) -> int:
        try:
            view = memoryview(data)
            while view:
                n = self._w.write(view)
                view = view[n or 0 :]
        except BrokenPipeError:
            self._thread.join()
            if self._error is not None:
                raise self._error from None
            raise
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Signal EOF, wait for the consumer and re-raise its failure."""
        if self._closed:
            return
        self._closed = True
        self._w.close()
        self._thread.join()
        if self._error is not None:
            raise self._error
