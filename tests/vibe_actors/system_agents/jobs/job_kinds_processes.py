"""Job kinds for the job-process tests: they tell which process runs them, or end it.

Importable by name in the workers' job processes; a test and its jobs share
files only (``args["pids"]``: a directory where a job leaves its pid).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from vibe_actors.agents.jobs import JobContext


def whoami(args: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """The pid of the process running the job, and of its parent."""
    return {"pid": os.getpid(), "ppid": os.getppid()}


def pid_then_sleep(args: dict[str, Any], ctx: JobContext) -> None:
    """Leaves its pid in ``args["pids"]/<job_id>``, then sleeps ``args["seconds"]``."""
    path = Path(args["pids"]) / ctx.job_id
    path.with_suffix(".tmp").write_text(str(os.getpid()))
    path.with_suffix(".tmp").rename(path)  # whole or absent for the reader
    threading.Event().wait(args["seconds"])


def exit_process(args: dict[str, Any], ctx: JobContext) -> None:
    """Ends its process at once (as a crash of native code would)."""
    os._exit(args.get("code", 3))
