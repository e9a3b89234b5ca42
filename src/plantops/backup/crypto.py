"""Encryption in the age format (https://age-encryption.org/v1): the ``age`` binary in its
own process when installed (``$PLANTOPS_AGE`` names another, empty turns it off),
pyrage (streaming, in a thread) otherwise; decryption via pyrage.

An operator without plantops decrypts an object with ``age -d -i key.txt obj.age``.
Keys come from a file, an environment variable or any ``KeyProvider``; only the key
id (a fingerprint of the public recipient) is ever recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import pyrage

from plantops.backup.errors import CorruptArchive, WrongKey
from plantops.backup.streams import CHUNK, PipedReader, PipedWriter, Readable, Writable
from plantops.errors import UserError
from plantops.inputs import BadInput, Limits, read_text

KEY_ENV = "PLANTOPS_BACKUP_KEY"
AGE_ENV = "PLANTOPS_AGE"
KEY_LIMITS = Limits(max_bytes=64 * 1024)


class KeyProvider(Protocol):
    """Where keys come from (file, env, a KMS or vault adapter...)."""

    @property
    def key_id(self) -> str: ...

    def recipients(self) -> list[Any]: ...

    def identities(self) -> list[Any]: ...


def key_id_for(recipient: str) -> str:
    """Stable id of a public recipient: never reveals the secret key."""
    return "age:" + hashlib.sha256(recipient.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AgeKeys:
    """Age identities (secret) and/or recipients (public) parsed from text."""

    secret_lines: tuple[str, ...]
    recipient_lines: tuple[str, ...]
    source: str

    @classmethod
    def parse(cls, text: str, source: str) -> AgeKeys:
        secrets: list[str] = []
        recipients: list[str] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("AGE-SECRET-KEY-"):
                secrets.append(line)
            elif line.startswith("age1"):
                recipients.append(line)
            else:
                raise UserError(
                    f"{source}: not an age key line (expected AGE-SECRET-KEY-… or age1…)"
                )
        if not secrets and not recipients:
            raise UserError(f"{source}: no age key found")
        keys = cls(tuple(secrets), tuple(recipients), source)
        keys.identities()  # validate early, with the source in the message
        return keys

    @property
    def public(self) -> str:
        if self.secret_lines:
            return str(self.identities()[0].to_public())
        return self.recipient_lines[0]

    @property
    def key_id(self) -> str:
        return key_id_for(self.public)

    def identities(self) -> list[Any]:
        try:
            return [pyrage.x25519.Identity.from_str(s) for s in self.secret_lines]
        except Exception as exc:
            raise UserError(f"{self.source}: invalid age secret key") from exc

    def recipients(self) -> list[Any]:
        try:
            if self.secret_lines:
                return [i.to_public() for i in self.identities()]
            return [pyrage.x25519.Recipient.from_str(r) for r in self.recipient_lines]
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"{self.source}: invalid age recipient") from exc


def load_key(path: Path | None = None, env: str = KEY_ENV) -> AgeKeys | None:
    """Key from ``path``, else from the ``env`` variable, else None (no encryption)."""
    if path is not None:
        # Through the bounded reader: a FIFO or device named as --key must not block, and
        # a key file is a few hundred bytes, never megabytes.
        try:
            text = read_text(path, str(path), limits=KEY_LIMITS)
        except BadInput as exc:
            raise UserError(f"cannot read key file {path}: {exc.message}") from exc
        return AgeKeys.parse(text, str(path))
    value = os.environ.get(env)
    if value:
        return AgeKeys.parse(value, f"${env}")
    return None


def generate_identity() -> tuple[str, str]:
    """A new (secret, public) age key pair."""
    ident = pyrage.x25519.Identity.generate()
    return str(ident), str(ident.to_public())


class _Remembering:
    """Keeps the exception a source raised, since pyrage rewraps it as DecryptError."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        self.error: BaseException | None = None

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self.src.read(size)
        except BaseException as exc:
            self.error = exc
            raise


class AgeProcessWriter:
    """Encrypts through the ``age`` binary in its own process (age's own streaming
    STREAM implementation, ~1.6 GB/s, off this process's GIL); a thread moves the
    ciphertext from age's stdout into ``out``. Same format as pyrage: either decrypts it.
    """

    def __init__(self, out: Writable, recipients: list[str], binary: str) -> None:
        cmd = [binary, "--encrypt"]
        for r in recipients:
            cmd += ["--recipient", r]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        except OSError as exc:
            raise WrongKey(f"cannot run {binary}: {exc.strerror or exc}") from exc
        self._out = out
        self._error: BaseException | None = None
        self._closed = False
        self._stderr = b""

        def pump() -> None:
            assert self._proc.stdout is not None
            try:
                while block := self._proc.stdout.read(CHUNK):
                    out.write(block)
            except BaseException as exc:
                self._error = exc
                self._proc.kill()

        def drain_stderr() -> None:
            assert self._proc.stderr is not None
            self._stderr = self._proc.stderr.read()

        self._threads = [
            threading.Thread(target=pump, daemon=True),
            threading.Thread(target=drain_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def write(self, data: bytes, /) -> int:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
        except BrokenPipeError:
            self._finish()
            raise WrongKey("age stopped reading before the end of the data") from None
        return len(data)

    def flush(self) -> None:
        pass

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        for t in self._threads:
            t.join()
        rc = self._proc.wait()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        if self._error is not None:
            raise self._error
        if rc != 0:
            detail = self._stderr.decode("utf-8", "replace").strip().splitlines()
            raise WrongKey(f"age --encrypt failed: {detail[-1] if detail else f'exit {rc}'}")

    def close(self) -> None:
        """Signal EOF, wait for age and the copy, and re-raise a failure of either."""
        self._finish()

    def abort(self) -> None:
        """Stop age at once (the object is being thrown away)."""
        with contextlib.suppress(OSError):
            self._proc.kill()
        with contextlib.suppress(BaseException):
            self._finish()


def age_binary() -> str | None:
    """The ``age`` executable to encrypt with (``$PLANTOPS_AGE``; empty disables it)."""
    configured = os.environ.get(AGE_ENV)
    if configured is not None:
        return configured or None
    return shutil.which("age")


def encrypting_writer(out: Writable, keys: KeyProvider) -> PipedWriter | AgeProcessWriter:
    """A writer that encrypts everything written to it into ``out`` (age format): the
    ``age`` binary when installed, pyrage in a thread otherwise."""
    recipients = keys.recipients()
    binary = age_binary()
    if binary is not None:
        return AgeProcessWriter(out, [str(r) for r in recipients], binary)

    def drain(plain: IO[bytes]) -> None:
        pyrage.encrypt_io(plain, out, recipients)

    return PipedWriter(drain)


def decrypting_reader(src: Readable, keys: KeyProvider | None, name: str) -> PipedReader:
    """A reader of the plaintext of the age stream ``src``.

    Every failure names the object: its full store location when ``src`` knows it (a
    :class:`~plantops.backup.streams.HashingReader`), else ``name``."""
    where = str(getattr(src, "name", "") or name)
    if keys is None:
        raise WrongKey(f"object {where} is encrypted: pass --key FILE or set ${KEY_ENV}")
    identities = keys.identities()
    if not identities:
        raise WrongKey(
            f"object {where}: the key given holds only a public recipient; need the secret key"
        )

    source = _Remembering(src)

    def pump(plain: IO[bytes]) -> None:
        try:
            pyrage.decrypt_io(source, plain, identities)
        except (pyrage.DecryptError, OSError) as exc:
            # pyrage raises DecryptError for the header (wrong key, damaged header) and a
            # bare OSError("decryption error") for a damaged or cut payload chunk.
            if source.error is not None:
                raise source.error from None
            # Read on to let the checksum say precisely what is wrong with the object.
            while source.read(1 << 20):
                pass
            if source.error is not None:
                raise source.error from None
            if isinstance(exc, pyrage.DecryptError) and "No matching keys" in str(exc):
                raise WrongKey(
                    f"cannot decrypt object {where}: it was not encrypted to key"
                    f" {keys.key_id}, or its header is damaged ({exc})"
                ) from exc
            raise CorruptArchive(
                f"cannot decrypt object {where}: {exc} (the object is damaged, or was"
                f" altered together with its catalog checksum)"
            ) from exc

    return PipedReader(pump)


__all__ = [
    "AGE_ENV",
    "KEY_ENV",
    "AgeKeys",
    "AgeProcessWriter",
    "KeyProvider",
    "age_binary",
    "decrypting_reader",
    "encrypting_writer",
    "generate_identity",
    "key_id_for",
    "load_key",
]
