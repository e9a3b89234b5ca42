"""The thin side of the plan server: find a running one, hand it ``plantops plan``.

A one-plant re-plan of a large fleet is dominated by what every fresh process pays again
(imports, reading the caches back, a ``stat`` of every rendered file); a resident process
(``plantops daemon start``, :mod:`plantops.cli.planserver`) keeps all of that. Like
``dmypy`` or Git's fsmonitor daemon, it is an accelerator and never a requirement: when
no matching server runs, or it cannot answer, the command runs in this process as always.

This module is imported by the console script before anything else, so it uses the
standard library only and does nothing but look for a socket unless one is there.

The protocol, over a Unix stream socket in a private folder (mode 0700, owned by the
user, checked before use; the server also checks the peer's uid with ``SO_PEERCRED``):

- the client sends one frame: a 4-byte big-endian length and a JSON object (``op``:
  ``run``, ``ping`` or ``stop``; for ``run`` also ``argv``, ``cwd`` and ``env``), with
  its stdin, stdout and stderr attached as ``SCM_RIGHTS`` — the server writes straight
  to the caller's terminal or pipe, so the bytes, colours and ``isatty()`` are the same;
- the server answers with one frame (``{"exit": N}``, or ``{"stale": true}`` when its
  own code changed on disk since it started, or the ``ping``/``stop`` status);
- while a run is in progress the client may send one byte, ``c``, to interrupt it (its
  Ctrl-C); closing the connection does the same.

Which server serves a client: the socket's name is a digest of the Python executable, the
installed plantops code (every source file's path, size and mtime) and the environment
that decides where caches live (``PLANTOPS_*``, ``XDG_*``, ``HOME``, ``PYTHONPATH``...).
A client with another environment or other code finds no socket and runs in-process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SERVED = ("plan",)
"""Commands a plan server runs; every other command always runs in-process."""

OFF_VALUES = ("0", "off", "no", "false")
"""``PLANTOPS_DAEMON`` set to one of these: never use a plan server."""

# The environment that decides what a run reads and writes besides its arguments: where
# caches and state live, which code and which settings. Colours, terminal width and the
# rest of the environment travel with each request and are applied for its duration.
_FINGERPRINT_PREFIXES = ("PLANTOPS_", "XDG_")
_FINGERPRINT_NAMES = ("HOME", "PYTHONPATH", "PYTHONHASHSEED", "VIRTUAL_ENV", "TZ", "LANG", "LC_ALL")
_NOT_FINGERPRINTED = ("PLANTOPS_DAEMON", "PLANTOPS_DAEMON_DIR", "XDG_RUNTIME_DIR")

MAX_FRAME = 4 << 20
"""The largest frame either side accepts (an environment is a few KiB)."""


class ServerGone(Exception):
    """The server closed the connection before it answered (killed, or it crashed)."""


def code_fingerprint() -> str:
    """Every source file of the installed package by path, size and mtime: an edit, an
    upgrade or a reinstall changes it (one ``stat`` per file, ~2 ms)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(f"{sys.executable}\0{sys.version}\0{root}".encode())
    stack = [str(root)]
    entries: list[tuple[str, int, int]] = []
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        stack.append(e.path)
                elif e.name.endswith((".py", ".j2", ".html", ".json", ".yaml", ".css", ".js")):
                    st = e.stat(follow_symlinks=False)
                    entries.append((e.path, st.st_size, st.st_mtime_ns))
    for path, size, mtime in sorted(entries):
        h.update(f"{path}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def env_fingerprint(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` a server must share with its clients (see the module doc)."""
    return {
        k: v
        for k, v in sorted(env.items())
        if (k.startswith(_FINGERPRINT_PREFIXES) or k in _FINGERPRINT_NAMES)
        and k not in _NOT_FINGERPRINTED
    }


def server_key(env: dict[str, str], code: str) -> str:
    blob = json.dumps({"code": code, "env": env_fingerprint(env)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def runtime_dir(env: dict[str, str]) -> Path:
    """``$PLANTOPS_DAEMON_DIR``, else ``$XDG_RUNTIME_DIR/plantops``, else
    ``/tmp/plantops-<uid>`` (short: a Unix socket's path has at most 107 bytes)."""
    explicit = env.get("PLANTOPS_DAEMON_DIR")
    if explicit:
        return Path(explicit)
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "plantops"
    return Path("/tmp") / f"plantops-{os.getuid()}"


def private_dir_problem(path: Path) -> str | None:
    """Why ``path`` is not a safe place for the socket (``None``: it is): it must be a
    real folder (not a link), owned by this user, that nobody else may enter."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a folder (a link or a file is refused)"
    if st.st_uid != os.getuid():
        return f"{path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})"
    if st.st_mode & 0o077:
        return f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o}; want 700)"
    return None


def socket_path(env: dict[str, str], code: str | None = None) -> Path:
    key = server_key(env, code if code is not None else code_fingerprint())
    return runtime_dir(env) / f"plan-{key}.sock"


def send_frame(sock: socket.socket, payload: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(payload).encode()
    frame = struct.pack(">I", len(data)) + data
    if fds:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
        sent = sock.sendmsg([frame], ancillary)
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 16))
        if not chunk:
            raise ServerGone("connection closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    if size > MAX_FRAME:
        raise ServerGone(f"frame of {size} bytes refused")
    doc = json.loads(_recv_exact(sock, size))
    if not isinstance(doc, dict):
        raise ServerGone("frame is not an object")
    return doc


def connect(path: Path, timeout: float | None = None) -> socket.socket | None:
    """A connection to the server at ``path``, or ``None`` (none there, or refused)."""
    if private_dir_problem(path.parent) is not None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def request(path: Path, op: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """``ping`` or ``stop`` the server at ``path``; ``None`` when none answers."""
    sock = connect(path, timeout)
    if sock is None:
        return None
    with sock:
        try:
            send_frame(sock, {"op": op})
            return recv_frame(sock)
        except (OSError, ServerGone, ValueError):
            return None


@contextlib.contextmanager
def _ctrl_c_forwarded(sock: socket.socket) -> Iterator[None]:
    """While the server runs the command, Ctrl-C here interrupts it there."""

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            sock.send(b"c")

    try:
        previous = signal.signal(signal.SIGINT, forward)
    except ValueError:  # not the main thread: no forwarding
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def forward(argv: list[str], env: dict[str, str] | None = None) -> int | None:
    """Run ``plantops ARGV`` in a matching plan server and return its exit code, or
    ``None`` when this process must run it itself (no server, another environment or
    code, the server's code changed, or it died before it answered)."""
    env = dict(os.environ if env is None else env)
    if not argv or argv[0] not in SERVED:
        return None
    if env.get("PLANTOPS_DAEMON", "").strip().lower() in OFF_VALUES:
        return None
    if not runtime_dir(env).is_dir():  # the usual case, no server ever started: ~10 µs
        return None
    try:
        path = socket_path(env)  # the code's fingerprint: ~1 ms
    except OSError:
        return None
    if not path.exists():
        return None
    sock = connect(path)
    if sock is None:
        return None
    with sock:
        try:
            send_frame(
                sock, {"op": "run", "argv": argv, "cwd": str(Path.cwd()), "env": env}, [0, 1, 2]
            )
        except OSError:
            return None  # e.g. a closed stdin cannot be handed over: run here
        try:
            with _ctrl_c_forwarded(sock):
                answer = recv_frame(sock)
        except (OSError, ServerGone, ValueError):
            sys.stderr.write(
                "plantops: the plan server stopped before it finished; running the command"
                " in this process\n"
            )
            sys.stderr.flush()
            return None
    if answer.get("stale"):
        return None
    code = answer.get("exit")
    return code if isinstance(code, int) else 1
