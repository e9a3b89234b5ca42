"""Encryption in the age format (https://age-encryption.org/v1), streaming via pyrage.

An operator without plantops decrypts an object with ``age -d -i key.txt obj.age``.
Keys come from a file, an environment variable or any ``KeyProvider``; only the key
id (a fingerprint of the public recipient) is ever recorded.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import pyrage

from plantops.backup.errors import WrongKey
from plantops.backup.streams import PipedReader, PipedWriter, Readable, Writable
from plantops.errors import UserError

KEY_ENV = "PLANTOPS_BACKUP_KEY"


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
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"cannot read key file {path}: {exc.strerror}") from exc
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


def encrypting_writer(out: Writable, keys: KeyProvider) -> PipedWriter:
    """A writer that encrypts everything written to it into ``out`` (age format)."""
    recipients = keys.recipients()

    def drain(plain: IO[bytes]) -> None:
        pyrage.encrypt_io(plain, out, recipients)

    return PipedWriter(drain)


def decrypting_reader(src: Readable, keys: KeyProvider | None, name: str) -> PipedReader:
    """A reader of the plaintext of the age stream ``src``."""
    if keys is None:
        raise WrongKey(f"{name} is encrypted: pass --key FILE or set ${KEY_ENV}")
    identities = keys.identities()
    if not identities:
        raise WrongKey(f"{name}: the key given holds only a public recipient; need the secret key")

    source = _Remembering(src)

    def pump(plain: IO[bytes]) -> None:
        try:
            pyrage.decrypt_io(source, plain, identities)
        except pyrage.DecryptError as exc:
            if source.error is not None:
                raise source.error from None
            # A damaged object usually fails age's MAC before its end: read on to let
            # the checksum say so precisely rather than blaming the key.
            while source.read(1 << 20):
                pass
            if source.error is not None:
                raise source.error from None
            raise WrongKey(f"cannot decrypt {name}: {exc} (wrong key or damaged object)") from exc

    return PipedReader(pump)


__all__ = [
    "KEY_ENV",
    "AgeKeys",
    "KeyProvider",
    "decrypting_reader",
    "encrypting_writer",
    "generate_identity",
    "key_id_for",
    "load_key",
]
