"""The console script: a ``plantops plan`` goes to a running plan server when there is
one for this environment (:mod:`plantops.cli.planclient`); everything else, and every
case the server cannot take, runs in this process (:func:`plantops.cli.main.main`).

Only the standard library is imported before that choice, so finding no server costs
microseconds and finding one spares the whole import of the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "plan":
        from plantops.cli.planclient import forward

        code = forward(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from plantops.cli.main import main as run_here

    run_here()


if __name__ == "__main__":
    main()
