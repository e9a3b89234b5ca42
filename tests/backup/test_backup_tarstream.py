"""The lean tar reader against archives written by Python's tarfile in every format."""

from __future__ import annotations

import io
import tarfile

import pytest

from plantops.backup.errors import CorruptArchive
from plantops.backup.tarstream import HARDLINK, TarReader

LONG = "d" * 120 + "/" + "f" * 130  # beyond ustar's 100 (+155 prefix) bytes


def _archive(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in [("ab/one", b"1" * 10), ("ab/two", b"2" * 1500), (LONG, b"L" * 513)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000.5 if fmt == tarfile.PAX_FORMAT else 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        d = tarfile.TarInfo("ab")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        link = tarfile.TarInfo("ab/three")
        link.type, link.linkname = tarfile.LNKTYPE, "ab/one"
        tar.addfile(link)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reads_what_tarfile_writes(fmt: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        with pytest.raises(ValueError):  # ustar cannot hold LONG: tarfile refuses
            _archive(fmt)
        return
    reader = TarReader(io.BufferedReader(io.BytesIO(_archive(fmt))))  # type: ignore[arg-type]
    seen = []
    for m in reader:
        body = reader.read() if m.is_file and m.name != "ab/two" else b""
        seen.append((m.name, m.size, m.kind, m.linkname, body[:3]))
    assert seen == [
        ("ab/one", 10, b"0", "", b"111"),
        ("ab/two", 1500, b"0", "", b""),  # body left unread: skipped for the caller
        (LONG, 513, b"0", "", b"LLL"),
        ("ab/", 0, b"5", "", b""),  # tarfile writes directories with a slash
        ("ab/three", 0, HARDLINK, "ab/one", b""),
    ]


def test_damaged_header_and_truncation_are_corrupt_archives() -> None:
    data = bytearray(_archive(tarfile.PAX_FORMAT))
    bad = bytearray(data)
    bad[1024 + 10] ^= 0x55  # inside the first real member's header
    with pytest.raises(CorruptArchive, match="checksum"):
        list(TarReader(io.BytesIO(bytes(bad))))
    reader = TarReader(io.BytesIO(bytes(data[:1700])))
    with pytest.raises(CorruptArchive, match="ends in the middle"):
        for _ in reader:
            reader.read()
