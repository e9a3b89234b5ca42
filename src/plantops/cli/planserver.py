"""The plan server: one resident process that runs ``plantops plan`` requests.

Started by ``plantops daemon start`` (or ``python -m plantops.cli.planserver --socket
PATH`` under a service manager). It imports the CLI once, switches on the resident
accelerators (:func:`plantops.services.resident.enable`: decoded caches kept in memory,
the rendered tree watched instead of ``stat``-ed), then serves requests one at a time
on its socket (:mod:`plantops.cli.planclient` has the protocol and its checks).

Each request runs exactly as the command line would: the caller's stdin, stdout and
stderr are put on fds 0-2, its environment, working folder and arguments applied, the
consoles set up again for that terminal, then :func:`plantops.cli.main.run`; the exit
code goes back to the caller. Everything is put back afterwards. A request that ended in
an unexpected exception or an interrupt drops every resident cache (its state is not
trusted), so the next request starts from the files on disk.

The server stops when asked (``plantops daemon stop``, SIGTERM, SIGINT), after
``--idle`` seconds without a request, or when its own code changed on disk (it answers
that request "stale" and the caller runs the command itself). ``kill -9`` at any moment
is safe: the tree writer's journal recovers the tree on the next run, exactly as after
a killed command line.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import faulthandler
import fcntl
import gc
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from plantops.cli import planclient

_STREAMS = 3


def _interrupt() -> None:
    """Ctrl-C for the run: KeyboardInterrupt in the server's main thread, as a terminal's
    SIGINT gives a command line. Forked render workers are not signalled: the pool
    terminates them on the way out (SIGTERM, whose default they keep: see ``stop``);
    a worker killed by SIGINT mid-task would leave the pool's queue locks held."""
    _thread.interrupt_main()


class _Request:
    """One connection: the caller's frame and descriptors, and the watch for Ctrl-C."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.fds: list[int] = []
        self.running = False
        self.interrupted = False
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        msg, ancdata, _flags, _addr = self.conn.recvmsg(
            1 << 16, socket.CMSG_SPACE(_STREAMS * struct.calcsize("i"))
        )
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(data) - len(data) % struct.calcsize("i")
                self.fds += list(struct.unpack(f"{usable // 4}i", data[:usable]))
        if len(msg) < 4:
            raise planclient.ServerGone("short frame")
        (size,) = struct.unpack(">I", msg[:4])
        if size > planclient.MAX_FRAME:
            raise planclient.ServerGone(f"frame of {size} bytes refused")
        body = msg[4:]
        while len(body) < size:
            chunk = self.conn.recv(min(size - len(body), 1 << 16))
            if not chunk:
                raise planclient.ServerGone("connection closed")
            body += chunk
        doc = json.loads(body[:size])
        if not isinstance(doc, dict):
            raise planclient.ServerGone("frame is not an object")
        return doc

    def close_fds(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []

    def watch_caller(self) -> None:
        """Interrupt the run when the caller presses Ctrl-C (``c``) or goes away."""

        def watch() -> None:
            try:
                data = self.conn.recv(1)
            except OSError:
                data = b""
            with self._lock:
                if self.running and data in (b"c", b""):
                    self.interrupted = True
                    _interrupt()

        # while it runs, a run renders serially (services.may_fork): an interrupt in the
        # middle of a forked pool could leave the pool, and so the server, stuck
        threading.Thread(target=watch, name="plan-caller", daemon=True).start()

    def finish(self) -> None:
        with self._lock:
            self.running = False


class _Applied:
    """The caller's streams, environment and folder, applied for one run and undone
    (``exit`` also undoes a partly done ``enter``)."""

    def __init__(self, fds: list[int], env: dict[str, str], cwd: str) -> None:
        self.fds, self.env, self.cwd = fds, env, cwd

    def enter(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved_env = dict(os.environ)
        self.saved_cwd = str(Path.cwd())
        self.saved_argv = sys.argv
        self.saved: list[int] = []
        try:
            os.chdir(self.cwd)  # first: a folder that is gone fails before anything moved
            os.environ.clear()
            os.environ.update(self.env)
            time.tzset()
            self.saved = [os.dup(n) for n in range(_STREAMS)]
            for n, fd in enumerate(self.fds):
                os.dup2(fd, n)
        except BaseException:
            self.exit()
            raise
        from plantops.cli.console import configure_consoles

        configure_consoles()

    def exit(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for n, fd in enumerate(self.saved):
            os.dup2(fd, n)
            os.close(fd)
        self.saved = []
        os.environ.clear()
        os.environ.update(self.saved_env)
        time.tzset()
        os.chdir(self.saved_cwd)
        sys.argv = self.saved_argv
        from plantops.cli.console import configure_consoles

        configure_consoles()


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


class PlanServer:
    def __init__(self, path: Path, idle: float) -> None:
        self.path, self.idle = path, idle
        self.code = planclient.code_fingerprint()
        self.started = time.time()
        self.served = 0
        self.stopping = False

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "socket": str(self.path),
            "started": self.started,
            "served": self.served,
            "idle_seconds": self.idle,
        }

    def warm_up(self) -> None:
        import plantops.cli.fleet  # noqa: F401  (the served command's module and its imports)
        import plantops.cli.main as climain
        from plantops.services import resident

        climain.build_app(("fleet",))
        resident.enable()
        gc.collect()
        gc.freeze()  # the imported code lives as long as the server: never scanned again
        gc.set_threshold(*climain.GC_THRESHOLD)

    def run(self, req: _Request, doc: dict[str, Any]) -> dict[str, Any]:
        argv, env, cwd = doc.get("argv"), doc.get("env"), doc.get("cwd")
        if (
            not isinstance(argv, list)
            or not all(isinstance(a, str) for a in argv)
            or not argv
            or argv[0] not in planclient.SERVED
            or not isinstance(env, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
            or not isinstance(cwd, str)
            or len(req.fds) != _STREAMS
        ):
            return {"error": "malformed request", "stale": True}
        if planclient.socket_path(env, self.code) != self.path:
            return {"error": "another environment's request", "stale": True}
        if planclient.code_fingerprint() != self.code:
            self.stopping = True  # the code on disk is not the code running here
            return {"stale": True}
        import plantops.cli.main as climain
        from plantops.services import resident

        started = time.perf_counter()
        code = 1
        clean = True
        applied = _Applied(req.fds, env, cwd)
        try:
            applied.enter()
        except (OSError, ValueError):  # its folder is gone, a NUL in its environment
            return {"stale": True}  # the caller runs it, and reports it, itself
        req.running = True
        req.watch_caller()
        try:
            try:
                sys.argv = ["plantops", *argv]
                climain.run(argv, prog_name="plantops")
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc)
            except KeyboardInterrupt:
                code, clean = 130, False
            except BaseException:  # a bug: the command line would print it too
                traceback.print_exc()
                code, clean = 1, False
            finally:
                req.finish()
                applied.exit()
        except KeyboardInterrupt:  # landed in the put-back: finish it
            applied.exit()
            code, clean = 130, False
        if req.interrupted or not clean:
            resident.reset()  # a run cut short: its in-memory state is not trusted
        self.served += 1
        self._log(argv, code, time.perf_counter() - started)
        return {"exit": code}

    def _log(self, argv: list[str], code: int, seconds: float) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f"{stamp} {' '.join(argv[:2])} exit {code} in {seconds:.3f} s", flush=True)

    def handle(self, conn: socket.socket) -> None:
        req = _Request(conn)
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.getuid():
                return  # only the user who started the server
            conn.settimeout(10.0)
            doc = req.read()
            conn.settimeout(None)
            op = doc.get("op")
            if op == "ping":
                answer = self.status()
            elif op == "stop":
                self.stopping = True
                answer = {**self.status(), "stopping": True}
            elif op == "run":
                answer = self.run(req, doc)
            else:
                answer = {"error": f"unknown op {op!r}"}
            with contextlib.suppress(OSError):
                planclient.send_frame(conn, answer)
        except (OSError, ValueError, planclient.ServerGone):
            return
        finally:
            req.close_fds()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            gc.collect(1)

    def serve(self) -> int:
        lock_path = self.path.with_suffix(".lock")
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"a plan server already serves {self.path}", file=sys.stderr)
            return 0
        self.warm_up()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a killed server (we hold the lock)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        listener.listen(16)
        listener.settimeout(0.5)

        me = os.getpid()

        def stop(signum: int, frame: object) -> None:
            if os.getpid() != me:  # a forked render worker inherited this handler: die
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            self.stopping = True

        # SIGINT keeps Python's default (KeyboardInterrupt): a caller's Ctrl-C reaches a
        # run as a SIGINT (see _interrupt)
        signal.signal(signal.SIGTERM, stop)
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: stacks to the log
        print(f"plan server {os.getpid()} listening on {self.path}", flush=True)
        last = time.monotonic()
        try:
            while not self.stopping:
                if self.idle and time.monotonic() - last > self.idle:
                    print("idle: stopping", flush=True)
                    break
                try:
                    conn, _addr = listener.accept()
                except (TimeoutError, InterruptedError):
                    continue
                except KeyboardInterrupt:
                    break
                conn.settimeout(None)
                self.handle(conn)
                last = time.monotonic()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            listener.close()
            os.close(lock_fd)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plantops.cli.planserver")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--idle", type=float, default=3600.0, help="seconds; 0: never")
    args = parser.parse_args(argv)
    return PlanServer(args.socket, args.idle).serve()


if __name__ == "__main__":
    sys.exit(main())
