"""Job functions the tests run; loaded by file path in the job's process."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from sagelab.errors import InvalidInput, NotFound
from sagelab.jobs import JobContext, LocalExecutor


def work(ctx: JobContext, n: int = 3, lines: int = 0, pause: float = 0.0) -> dict[str, Any]:
    """Prints, logs metrics (many, to cross the inline-flush size), checkpoints, returns."""
    ctx.set_secondary_status("Training", "fitting")
    for i in range(lines):
        print(f"line {i}")
        time.sleep(pause)
    for i in range(n):
        ctx.log_metric("train:loss", 1.0 / (i + 1))
    ctx.log_metric("validation:auc", 0.5)
    ctx.log_metric("validation:auc", float("nan"))  # skipped, with a warning
    ctx.log_metric("validation:auc", 0.75, step=7)
    ctx.logger.info("logged %d points", n)
    (ctx.checkpoint_dir / "state.txt").write_text(str(n))
    return {"n": n, "checkpoint": ctx.checkpoint_dir / "state.txt"}


def bad_input(ctx: JobContext) -> None:
    raise InvalidInput("The 'rows' parameter must be positive. Got -1.")


def missing(ctx: JobContext) -> None:
    raise NotFound("The table 'uci.wines' is not in the catalog.")


def crash(ctx: JobContext) -> None:
    print("about to divide")
    _ = 1 / 0


def hard_exit(ctx: JobContext, code: int = 3) -> None:
    os._exit(code)


def self_kill(ctx: JobContext) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def bad_result(ctx: JobContext) -> list[int]:
    return [1, 2]


def sleepy(ctx: JobContext, seconds: float = 60.0) -> None:
    """Sleeps in C and never looks at stop requests."""
    time.sleep(seconds)


def patient(ctx: JobContext, period: float = 0.05) -> dict[str, Any]:
    """Watches for stops itself and returns what it got done."""
    ctx.interruptible = False
    i = 0
    while not ctx.stop_requested:
        ctx.log_metric("loop:i", i)
        i += 1
        time.sleep(period)
    return {"iterations": i}


def stubborn(ctx: JobContext) -> None:
    """Ignores SIGTERM altogether: only a kill ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)


def quick_local() -> LocalExecutor:
    """A local executor with a short grace period, so the kill path is quick to test."""
    return LocalExecutor(stop_grace_seconds=1.0)


def whoami(ctx: JobContext, seconds: float = 0.0) -> dict[str, Any]:
    """Where the job runs: the process that started its supervisor, its working
    directory, a variable of the caller's environment and a draw from NumPy's global
    generator (the starter is read before the job sleeps ``seconds``)."""
    import numpy as np
    import psutil

    supervisor = psutil.Process(os.getppid())
    starter = psutil.Process(supervisor.ppid())
    cmdline = " ".join(starter.cmdline())
    time.sleep(seconds)
    return {
        "starter_pid": starter.pid,
        "starter": cmdline,
        "cwd": os.getcwd(),
        "marker": os.environ.get("SAGELAB_TEST_MARKER", ""),
        "draw": float(np.random.random()),
    }
