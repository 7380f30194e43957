"""Run every benchmark on SQLite and on PostgreSQL + Redis, one after the other.

`make bench` runs this. Each benchmark prints its own figure lines; a
benchmark that fails prints why and the others still run.
"""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "overhead",
    "cancel_latency",
    "queued_cancel",
    "list_at_scale",
    "million",
    "polling_load",
    "sustained",
    "bulk_cancel",
    "stage_work",
    "media_index",
    "transcribe",
    "remote_job",
]


def run(script: str, servers: bool) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKDECK_")}
    env["TASKDECK_QUEUE_NAME"] = f"bench-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, str(HERE / f"{script}.py")]
    with tempfile.TemporaryDirectory(prefix="taskdeck-bench-") as folder:
        env["TASKDECK_DATA_DIR"] = folder
        if servers:
            for name in ("TASKDECK_TEST_POSTGRES", "TASKDECK_TEST_REDIS"):
                if name in os.environ:
                    env[name] = os.environ[name]
            argv = [sys.executable, "-m", "tests.backends", *argv]
        return subprocess.run(argv, env=env, cwd=HERE.parent).returncode


def main() -> int:
    chosen = sys.argv[1:] or BENCHMARKS
    failures = 0
    for script in chosen:
        for servers in (False, True):
            failures += run(script, servers) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
