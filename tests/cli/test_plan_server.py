"""The plan server (``plantops daemon``): a real server process, real console-script
clients; a run through it must be indistinguishable from a run in the client's process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantops.cli import planclient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "acme-manufacturing"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def socket_of(env: dict[str, str]) -> Path:
    """The socket a client in ``env`` looks for (its code may be another copy)."""
    code = "import os; from plantops.cli import planclient as c; print(c.socket_path(dict(os.environ)))"
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return Path(r.stdout.strip())


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.path = socket_of(env)
        self.log = self.path.with_suffix(".log")
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plantops.cli.planserver", "--socket", str(self.path)],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # as `plantops daemon start` does
            )
        deadline = time.monotonic() + 60
        while planclient.request(self.path, "ping", timeout=1) is None:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "plan server did not start"
            time.sleep(0.05)

    def served(self) -> int:
        answer = planclient.request(self.path, "ping")
        assert answer is not None
        return int(answer["served"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    # a short private folder: a Unix socket's path has at most 107 bytes
    folder = Path(tempfile.mkdtemp(prefix="pd", dir="/tmp"))
    e = dict(os.environ)
    e.update(
        PLANTOPS_DAEMON_DIR=str(folder),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONPATH=str(ROOT / "src"),
        COLUMNS="200",
    )
    e.pop("PLANTOPS_DAEMON", None)
    yield e
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    s = Server(env)
    yield s
    s.stop()


def plantops(
    env: dict[str, str], *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plantops.cli", *args],
        env={**env, **extra},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _fleet(tmp_path: Path, name: str = "fleet") -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLE, root)
    return root


def _same_run(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same command in two identical copies (fleet + out), through the server and
    in-process; paths in the output normalised (the two folder names have one length,
    so Rich wraps both outputs at the same place)."""
    results = []
    for side, extra in (("daemon", {}), ("inproc", {"PLANTOPS_DAEMON": "0"})):
        base = tmp_path / side
        r = plantops(env, *args, cwd=base, **extra)
        r.stdout, r.stderr = (t.replace(str(base), "BASE") for t in (r.stdout, r.stderr))
        results.append(r)
    return results[0], results[1]


def test_a_plan_through_the_server_is_the_plan_of_the_command_line(
    env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    for side in ("daemon", "inproc"):
        _fleet(tmp_path / side)
    args = ["plan", "fleet", "--out", "out", "--today", "2026-11-22"]
    for round_ in range(3):
        served, local = _same_run(env, tmp_path, args)
        assert served.returncode == local.returncode == 0, served.stderr + local.stderr
        assert served.stdout == local.stdout
        assert served.stderr == local.stderr
        assert _tree(tmp_path / "daemon" / "out") == _tree(tmp_path / "inproc" / "out")
        assert server.served() == round_ + 1
        for side in ("daemon", "inproc"):  # the next round is a one-plant re-plan
            plant = tmp_path / side / "fleet" / "plants" / "lyon-meddev.yaml"
            plant.write_text(plant.read_text().replace("\nname: ", f"\nname: R{round_} ", 1))
    # a hand edit of a rendered file is restored the same way
    for side in ("daemon", "inproc"):
        victim = sorted((tmp_path / side / "out").rglob("*.yaml"))[3]
        victim.write_text("edited by hand\n")
    served, local = _same_run(env, tmp_path, args)
    assert served.stdout == local.stdout and served.returncode == 0
    assert _tree(tmp_path / "daemon" / "out") == _tree(tmp_path / "inproc" / "out")


def test_an_error_has_the_same_exit_code_and_message(
    env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    for side in ("daemon", "inproc"):
        root = _fleet(tmp_path / side)
        plant = root / "plants" / "lyon-meddev.yaml"
        plant.write_text(plant.read_text().replace("named:", "named: [", 1))
    served, local = _same_run(env, tmp_path, ["plan", "fleet", "--out", "out"])
    assert served.returncode == local.returncode == 2
    assert served.stderr == local.stderr and "lyon-meddev.yaml:" in served.stderr
    usage = plantops(env, "plan", "--no-such-option")
    assert usage.returncode == 2 and "No such option" in usage.stderr
    assert server.served() == 2


def test_another_environment_is_not_served(
    env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    root = _fleet(tmp_path)
    r = plantops(env, "plan", str(root), "--out", str(tmp_path / "o"), XDG_CACHE_HOME="/tmp/x1")
    assert r.returncode == 0, r.stderr
    r = plantops(env, "plan", str(root), "--out", str(tmp_path / "o"), PLANTOPS_DAEMON="off")
    assert r.returncode == 0, r.stderr
    r = plantops(env, "validate", str(root))  # only plan is served
    assert r.returncode == 0, r.stderr
    assert server.served() == 0
    # a request naming another environment on this socket is refused, not run
    sock = planclient.connect(server.path)
    assert sock is not None
    with sock:
        other = {**env, "XDG_CACHE_HOME": "/tmp/elsewhere"}
        planclient.send_frame(
            sock, {"op": "run", "argv": ["plan"], "cwd": "/", "env": other}, [0, 1, 2]
        )
        assert planclient.recv_frame(sock)["stale"] is True


def test_a_killed_server_leaves_clients_running_in_process(
    env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    root = _fleet(tmp_path)
    server.proc.kill()
    server.proc.wait()
    assert server.path.exists()  # kill -9 leaves the socket file behind
    r = plantops(env, "plan", str(root), "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and "files written" in r.stdout
    assert "plan server" not in r.stderr  # nobody answered: silently in-process
    # a new server takes the socket over
    again = Server(env)
    try:
        r = plantops(env, "plan", str(root), "--out", str(tmp_path / "o"))
        assert r.returncode == 0 and again.served() == 1
    finally:
        again.stop()


def _start_a_long_plan(
    env: dict[str, str], tmp_path: Path
) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A cold plan of 60 plants (a few seconds) started as a client: (fleet, out, it)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.plan_fleet import generate_fleet

    root = generate_fleet(tmp_path / "big", 60)
    out = tmp_path / "o"
    client = subprocess.Popen(
        [sys.executable, "-m", "plantops.cli", "plan", str(root), "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return root, out, client


def _same_as_in_process(env: dict[str, str], root: Path, out: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    r = plantops(env, "plan", str(root), "--out", str(local), PLANTOPS_DAEMON="0")
    assert r.returncode == 0, r.stderr
    assert _tree(out) == _tree(local)


def test_a_server_killed_mid_run_is_replaced_by_a_run_in_process(
    env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    root, out, client = _start_a_long_plan(env, tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the run has started once the lock file exists
        if any(tmp_path.glob("*.lock")) or any(tmp_path.glob(".o.*")):
            break
        time.sleep(0.005)
    server.proc.kill()
    _stdout, stderr = client.communicate(timeout=300)
    assert client.returncode == 0, stderr
    assert "stopped before it finished; running the command in this process" in stderr
    # the tree is complete: the in-process run recovered and finished it
    _same_as_in_process(env, root, out, tmp_path)
    assert not list(tmp_path.glob(".o.*"))  # no staging or journal left beside it


def test_ctrl_c_interrupts_the_run_in_the_server(
    env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    root, out, client = _start_a_long_plan(env, tmp_path)
    time.sleep(1.0)
    client.send_signal(signal.SIGINT)
    _stdout, stderr = client.communicate(timeout=120)
    # interrupted as a command line is by Ctrl-C: exit 130 (128 + SIGINT), or the run
    # had just finished
    assert client.returncode in (130, 0), stderr
    assert not list(tmp_path.glob(".o.*"))
    # the server lives on, and its next run is correct
    r = plantops(env, "plan", str(root), "--out", str(out))
    assert r.returncode == 0, r.stderr
    _same_as_in_process(env, root, out, tmp_path)
    assert server.served() == 2


def test_a_changed_code_tree_is_never_served_by_the_old_server(
    env: dict[str, str], tmp_path: Path
) -> None:
    code = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "plantops", code / "plantops")
    env = {**env, "PYTHONPATH": str(code)}
    s = Server(env)
    try:
        root = _fleet(tmp_path)
        r = plantops(env, "plan", str(root), "--out", str(tmp_path / "o"))
        assert r.returncode == 0 and s.served() == 1
        path = s.path
        touched = code / "plantops" / "render" / "core.py"
        touched.write_text(touched.read_text() + "\n# changed\n")
        # the client now looks for another socket: this server is not asked at all
        assert socket_of(env) != path
        r = plantops(env, "plan", str(root), "--out", str(tmp_path / "o"))
        assert r.returncode == 0 and s.served() == 1
        # a request on the old socket (a client started before the edit) is answered stale
        sock = planclient.connect(path)
        assert sock is not None
        with sock:
            old_env = {**env}
            planclient.send_frame(
                sock, {"op": "run", "argv": ["plan"], "cwd": "/", "env": old_env}, [0, 1, 2]
            )
            assert planclient.recv_frame(sock).get("stale") is True
        s.proc.wait(30)  # and the stale server stops by itself
    finally:
        s.stop()


def test_malformed_frames_do_not_stop_the_server(server: Server, tmp_path: Path) -> None:
    for junk in (b"\x00\x00\x00\x05{]}", b"\xff\xff\xff\xff", b"\x00\x00\x00\x02[]", b"x"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(server.path))
        sock.sendall(junk)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(15)
        assert sock.recv(100) == b""  # dropped without an answer
        sock.close()
    sock = planclient.connect(server.path)
    assert sock is not None
    with sock:  # a run without the three streams is refused
        planclient.send_frame(sock, {"op": "run", "argv": ["plan"], "cwd": "/", "env": server.env})
        assert planclient.recv_frame(sock).get("stale") is True
    for cwd, extra in (("/no/such/folder", {}), ("/", {"BAD": "nul\x00byte"})):
        sock = planclient.connect(server.path)
        assert sock is not None
        with sock:  # a context the server cannot apply: the caller runs it itself
            planclient.send_frame(
                sock,
                {"op": "run", "argv": ["plan"], "cwd": cwd, "env": {**server.env, **extra}},
                [0, 1, 2],
            )
            assert planclient.recv_frame(sock).get("stale") is True
    assert server.served() == 0 and server.proc.poll() is None
    # its own streams are its own again: the next run's log line reaches its log
    r = plantops(server.env, "plan", str(_fleet(tmp_path)), "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and server.served() == 1
    assert " exit 0 in " in server.log.read_text()


def test_daemon_commands_start_report_and_stop(env: dict[str, str], tmp_path: Path) -> None:
    r = plantops(env, "daemon", "status")
    assert r.returncode == 1 and "no plan server runs" in r.stdout
    r = plantops(env, "daemon", "start", "--idle", "5")
    assert r.returncode == 0 and "plan server started" in r.stdout, r.stderr
    try:
        r = plantops(env, "daemon", "start")
        assert r.returncode == 0 and "already runs" in r.stdout
        root = _fleet(tmp_path)
        assert plantops(env, "plan", str(root), "--out", str(tmp_path / "o")).returncode == 0
        r = plantops(env, "daemon", "status")
        assert r.returncode == 0 and "1 run(s) served" in r.stdout
    finally:
        r = plantops(env, "daemon", "stop")
    assert r.returncode == 0 and "stopped after 1 run(s)" in r.stdout
    assert not planclient.socket_path(env).exists()
    assert plantops(env, "daemon", "stop").returncode == 0


def test_an_unsafe_folder_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    folder = Path(env["PLANTOPS_DAEMON_DIR"])
    folder.chmod(0o755)
    r = plantops(env, "daemon", "start")
    assert r.returncode == 2 and "open to other users (mode 755; want 700)" in r.stderr
    link = Path(tempfile.mkdtemp(prefix="pl", dir="/tmp")) / "d"
    link.symlink_to(folder)
    try:
        r = plantops(env, "daemon", "start", PLANTOPS_DAEMON_DIR=str(link))
        assert r.returncode == 2 and "not a folder" in r.stderr
    finally:
        shutil.rmtree(link.parent)
    assert planclient.connect(folder / "x.sock") is None


def test_an_idle_server_stops_by_itself(env: dict[str, str]) -> None:
    path = planclient.socket_path(env)
    proc = subprocess.run(
        [sys.executable, "-m", "plantops.cli.planserver", "--socket", str(path), "--idle", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and "idle: stopping" in proc.stdout
    assert not path.exists()


def test_the_fingerprint_follows_code_and_cache_settings(tmp_path: Path) -> None:
    base = {"HOME": "/root", "XDG_CACHE_HOME": "/c", "COLUMNS": "80", "PLANTOPS_DAEMON": "1"}
    key = planclient.server_key(base, "code")
    assert planclient.server_key({**base, "COLUMNS": "120", "TERM": "dumb"}, "code") == key
    assert planclient.server_key({**base, "PLANTOPS_DAEMON_DIR": "/x"}, "code") == key
    assert planclient.server_key({**base, "XDG_CACHE_HOME": "/d"}, "code") != key
    assert planclient.server_key({**base, "PLANTOPS_TREE_CACHE": ""}, "code") != key
    assert planclient.server_key(base, "other code") != key
    assert planclient.forward(["validate", "x"]) is None  # never forwarded
    # no server folder at all (nobody ever started one): not even the code is fingerprinted
    nowhere = {**base, "PLANTOPS_DAEMON_DIR": str(tmp_path / "none")}
    assert planclient.forward(["plan", "x"], nowhere) is None
