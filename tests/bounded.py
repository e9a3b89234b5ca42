"""Run a call under a wall-clock bound: hostile-input tests must end in seconds, never hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SECONDS = 5.0


def bounded(call: Callable[[], object], seconds: float = SECONDS) -> object:
    """``call()``'s result (or the exception it raised), run in a daemon thread; fail the
    test if it does not finish within ``seconds``."""
    out: list[object] = []

    def target() -> None:
        try:
            out.append(call())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not finish within {seconds} s"
    assert time.monotonic() - started < seconds
    return out[0]
