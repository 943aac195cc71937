"""The short chaos run (bench/chaos.py) in CI: a few jobs through kills and restarts, nothing lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_short_chaos_run_loses_no_job_no_webhook_and_leaves_no_file() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/chaos.py",
            "--jobs", "8",
            "--steps", "20",
            "--chaos-seconds", "8",
            "--pause", "0.5", "1.5",
            "--settle-seconds", "40",
            "--seed", "40",  # a fixed draw: the first four faults kill a worker, the API, the group, then SIGTERM
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| 8 | 8 | 0 | 0 | 0 | 0 | 8 |" in done.stdout
    assert all(f"{fault} 0" not in done.stdout for fault in ("kill9_worker", "kill9_api", "kill9_group"))
