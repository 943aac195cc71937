"""``framecast serve`` whose workers (every rank of a GPU group too) render the real tiny Wan model with a chosen
number of denoising steps, for tests that need a render long enough to cancel or to kill a rank in.

    python -m tests.tiny_serve STEPS serve [--gpus cpu:2] [--host H] [--port P] ...

Everything else is the real ``serve``; only the preset's step count differs from ``tiny-wan``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from framecast.config import Settings


@dataclass(frozen=True)
class TinyWanSteps:
    """An engine factory that pickles (workers and ranks are spawned processes): tiny-wan with ``steps``."""

    steps: int

    def __call__(self, settings: Settings) -> Any:
        from framecast.engine import engine_options
        from framecast.engine.engine import DiffusersEngine
        from framecast.engine.presets import get_preset

        return DiffusersEngine(replace(get_preset("tiny-wan"), steps=self.steps), engine_options(settings))


def main(argv: Sequence[str]) -> int:
    from tests.live_server import serve_main
    from tests.tiny_serve import TinyWanSteps  # by its module name, not __main__, so workers can unpickle it

    steps, *rest = argv
    return serve_main(rest, TinyWanSteps(int(steps)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
