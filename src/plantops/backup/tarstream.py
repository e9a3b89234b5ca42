"""A lean reader of tar streams (ustar, pax and GNU long names), for filestores.

``tarfile`` in stream mode spends ~200 µs of Python per member; an Odoo filestore has
tens of thousands of small files, so extraction was bound by header parsing. This
reader parses the 512-byte headers directly from a buffered stream (checksums
checked) and hands each member's body to the caller as a bounded reader. It never
touches the file system; :mod:`plantops.backup.restore` decides what to write where.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from plantops.backup.errors import CorruptArchive
from plantops.backup.streams import Readable

BLOCK = 512
REGULAR = (b"0", b"\0", b"7")
HARDLINK = b"1"
DIRECTORY = b"5"


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    kind: bytes  # the typeflag: REGULAR, HARDLINK, DIRECTORY, ...
    linkname: str = ""

    @property
    def is_file(self) -> bool:
        return self.kind in REGULAR


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large values
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise CorruptArchive(f"tar header field {field!r} is not a number") from None


def _pax_records(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    try:
        while pos < len(data) and data[pos] != 0:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
            out[key.decode()] = value.decode("utf-8", "surrogateescape")
            pos += length
    except ValueError:
        raise CorruptArchive("tar pax header is malformed") from None
    return out


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class TarReader:
    """Iterate over members; read each member's body with :meth:`read` before moving on."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        self._left = 0  # unread body bytes of the current member
        self._pad = 0

    def _exact(self, n: int) -> bytes:
        data = self.src.read(n)
        while len(data) < n:
            more = self.src.read(n - len(data))
            if not more:
                raise CorruptArchive("tar stream ends in the middle of a member")
            data += more
        return data

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes of the current member's body (all that is left if -1)."""
        n = self._left if size < 0 else min(size, self._left)
        if n <= 0:
            return b""
        data = self._exact(n)
        self._left -= n
        return data

    def _skip_rest(self) -> None:
        left = self._left + self._pad
        while left:
            left -= len(self._exact(min(left, 1 << 20)))
        self._left = self._pad = 0

    def _body(self, size: int) -> bytes:
        data = self._exact(size)
        pad = -size % BLOCK
        if pad:
            self._exact(pad)
        return data

    def __iter__(self) -> Iterator[Member]:
        pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            self._skip_rest()
            header = self.src.read(BLOCK)
            if not header or header == bytes(BLOCK):
                return  # end of archive (a zero block, or a stream cut at a block edge)
            if len(header) < BLOCK:
                header += self._exact(BLOCK - len(header))
            stored = _number(header[148:156])
            actual = sum(header[:148]) + 8 * 32 + sum(header[156:])
            if stored != actual:
                raise CorruptArchive("tar header checksum mismatch")
            kind = header[156:157]
            size = _number(header[124:136])
            if kind in (b"x", b"g"):
                records = _pax_records(self._body(size))
                if kind == b"x":
                    pax = records
                continue
            if kind in (b"L", b"K"):
                value = _text(self._body(size))
                if kind == b"L":
                    long_name = value
                else:
                    long_link = value
                continue
            name = _text(header[0:100])
            if header[257:262] == b"ustar" and header[345] != 0:
                name = f"{_text(header[345:500])}/{name}"
            name = pax.get("path", long_name or name)
            link = pax.get("linkpath", long_link or _text(header[157:257]))
            size = int(pax.get("size", size))
            pax, long_name, long_link = {}, None, None
            self._left = size if kind not in (HARDLINK, DIRECTORY) else 0
            self._pad = -self._left % BLOCK
            yield Member(name, size, kind, link)
