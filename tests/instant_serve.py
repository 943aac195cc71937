"""``framecast serve`` whose workers render with ``InstantEngine`` at a chosen pace (the dedicated fake at the
hardware boundary), for the tests and ``bench/chaos.py`` that kill and restart real process trees.

    python -m tests.instant_serve STEPS STEP_SECONDS serve [--workers N] [--host H] [--port P] ...

Everything else is the real ``serve``: the CLI's settings, the API, the supervised worker processes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from framecast.config import Settings
from framecast.engine.instant import InstantEngine


@dataclass(frozen=True)
class PacedInstant:
    """An engine factory that pickles (workers are spawned processes): InstantEngine with these steps."""

    steps: int
    step_seconds: float

    def __call__(self, settings: Settings) -> InstantEngine:
        return InstantEngine(steps=self.steps, step_seconds=self.step_seconds)


def main(argv: Sequence[str]) -> int:
    from tests.instant_serve import (
        PacedInstant,
    )  # by its module name, not __main__, so workers can unpickle it
    from tests.live_server import serve_main

    steps, step_seconds, *rest = argv
    return serve_main(rest, PacedInstant(int(steps), float(step_seconds)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
