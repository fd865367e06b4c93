"""A warm start for local jobs: a server that has imported what jobs use and forks them.

A job's process used to start from a bare interpreter and pay, each time, for
importing sagelab, SQLAlchemy, DuckDB, PyArrow and the algorithm's library
(XGBoost alone imports scikit-learn and SciPy): seconds of CPU before the first
row is read, for every training job and every tuning trial. The fork server
pays them once. It is a process of its own (``python -m sagelab.jobs._forkserver``),
started in the background by the first local launch that finds none, which imports
the job runner and the modules of :data:`DEFAULT_PRELOAD`, then listens on a
Unix socket. A launch sends it the runner's arguments, the caller's environment,
working directory and log file; it forks, and the child becomes the job's
process exactly as ``python -m sagelab.jobs._runner`` would: a session of its
own, stdin from ``/dev/null``, stdout and stderr to the log, the caller's
environment and working directory. Until the server is ready, and whenever it
cannot be reached, launches start a fresh interpreter as before, so the server
only ever makes a start faster.

Why not :mod:`multiprocessing`'s ``forkserver``: its children belong to the
process that asked for them (they are joined or killed when it exits), while a
job must outlive the command that submitted it.

What keeps a warm process honest:

* the socket's name is a digest of the interpreter, of every sagelab source
  file's size and modification time, and of the environment variables read when
  modules are imported (``OMP_*``, ``MKL_*``, ``PYTHON*``, ``LD_*``, ``PATH`` and
  the like, :func:`_import_environment`), so an upgraded sagelab, an edited
  source file or another thread setting starts another server, and the stale one
  is never asked again;
* the server never runs a parallel region, opens a database or starts a thread
  before it forks, so no lock or thread pool is copied half-held;
* the socket lives in a folder only its user can enter (``0700``, checked);
* each child reseeds NumPy's legacy global generator (Python's own ``random``
  reseeds itself after a fork), so two jobs never share random draws;
* the server exits after ``job_fork_server_idle_seconds`` without a launch, and
  removes its socket.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import hashlib
import importlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from sagelab.jobs._kinds import builtin_job_modules

__all__ = ["DEFAULT_PRELOAD", "ForkServerClient", "serve"]

#: Modules the server imports before it serves: the job runner, the modules of the job
#: kinds that ship with sagelab (named by the kinds table, not imported by this package)
#: and the two libraries whose imports cost the most (XGBoost alone imports scikit-learn
#: and SciPy), when they are installed.
DEFAULT_PRELOAD = ("sagelab.jobs._runner", *builtin_job_modules(), "xgboost", "lightgbm")

#: Environment variables that take effect when a module is imported (thread pools,
#: allocators, the interpreter's own): a change of any of them calls for another server.
_IMPORT_ENV_PREFIXES = (
    "OMP_",
    "GOMP_",
    "KMP_",
    "MKL_",
    "OPENBLAS_",
    "BLIS_",
    "NUMEXPR_",
    "VECLIB_",
    "MALLOC_",
    "PYTHON",
    "LD_",
    "ARROW_",
    "DUCKDB_",
    "XGBOOST_",
    "LIGHTGBM_",
    "SKLEARN_",
    "JOBLIB_",
    "SCIPY_",
    "NUMPY_",
)
_IMPORT_ENV_NAMES = ("PATH", "TMPDIR", "VIRTUAL_ENV", "SAGELAB_JOB_PRELOAD")

_CONNECT_TIMEOUT_SECONDS = 5.0
#: The longest path a Unix socket may have (``sun_path`` is 108 bytes on Linux), less
#: the room the server's staging name takes (``.PID``).
_MAX_SOCKET_PATH = 107 - 12
_MAX_REQUEST_BYTES = 8 * 1024 * 1024


def _import_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in env.items() if k.startswith(_IMPORT_ENV_PREFIXES) or k in _IMPORT_ENV_NAMES
    }


def _source_stamp() -> Iterable[str]:
    """Each sagelab source file's path, size and modification time."""
    import sagelab

    root = Path(sagelab.__file__).parent
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        yield f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}"


def server_key(env: Mapping[str, str]) -> str:
    """The digest that names the server fit for a caller with this environment."""
    digest = hashlib.sha256()
    digest.update(sys.executable.encode())
    for line in _source_stamp():
        digest.update(line.encode())
    digest.update(json.dumps(sorted(_import_environment(env).items())).encode())
    return digest.hexdigest()[:20]


def runtime_dir() -> Path:
    """A folder for the servers' sockets that only this user can enter.

    Raises:
        OSError: the folder exists but belongs to someone else or is open to others.
    """
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"sagelab-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{folder} must be a folder of this user's that no one else can enter")
    return folder


class ForkServerClient:
    """Asks the fork server for a job's process, and starts the server when there is none.

    Args:
        idle_seconds: how long a server this client starts waits for launches before it exits.
        preload: the modules it imports (default :data:`DEFAULT_PRELOAD`).
    """

    def __init__(self, idle_seconds: float, preload: Iterable[str] | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.preload = tuple(DEFAULT_PRELOAD if preload is None else preload)

    def socket_path(self, env: Mapping[str, str]) -> Path | None:
        """Where the server for a caller with this environment listens (None: it cannot)."""
        try:
            path = runtime_dir() / f"jobs-{server_key(env)}.sock"
        except OSError:
            return None
        return path if len(os.fsencode(path)) <= _MAX_SOCKET_PATH else None

    def ready(self, env: Mapping[str, str]) -> bool:
        """Whether a server for this environment is listening now."""
        path = self.socket_path(env)
        return path is not None and path.exists()

    def wait_ready(self, env: Mapping[str, str], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a server for this environment to listen."""
        deadline = time.monotonic() + timeout
        while not self.ready(env):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def launch(self, argv: list[str], env: Mapping[str, str], log_path: Path) -> int | None:
        """Start ``python -m sagelab.jobs._runner ARGV`` through the server.

        Returns:
            The job process's pid, or None when no server was ready (one is then
            started in the background for the launches after this one) or none can
            be (the runtime folder is not private, or its path too long for a socket).
        """
        path = self.socket_path(env)
        if path is None:
            return None
        request = {"argv": argv, "env": dict(env), "cwd": os.getcwd(), "log": str(log_path)}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(_CONNECT_TIMEOUT_SECONDS)
                conn.connect(str(path))
                conn.sendall(json.dumps(request).encode() + b"\n")
                reply = json.loads(_read_line(conn))
            pid = reply.get("pid")
            return int(pid) if isinstance(pid, int) else None
        except (OSError, ValueError):
            self._start_server(path, env)
            return None

    def _start_server(self, path: Path, env: Mapping[str, str]) -> None:
        """Start a server for ``path`` unless one is already starting or serving."""
        lock = path.with_suffix(".lock")
        with contextlib.suppress(OSError), lock.open("a") as handle:
            try:  # the server holds this lock for its whole life
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            fcntl.flock(handle, fcntl.LOCK_UN)
            log = path.with_suffix(".log")
            with log.open("ab") as out:
                starter = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _DETACH,
                        "-m",
                        "sagelab.jobs._forkserver",
                        "--socket",
                        str(path),
                        "--idle",
                        repr(float(self.idle_seconds)),
                        "--preload",
                        ",".join(self.preload),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**env, "PYTHONUNBUFFERED": "1"},
                    cwd="/",
                    start_new_session=True,
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                starter.wait(timeout=10)


#: Run as ``python -c _DETACH ARGS``: fork, let the parent exit at once, and become
#: ``python ARGS`` in the child. The server is then nobody's child (the caller need not
#: reap it when it ends), and the caller waits only for a bare interpreter's start.
_DETACH = "import os, sys\nif os.fork():\n    os._exit(0)\nos.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_REQUEST_BYTES:
            raise ValueError("request too long")
    return data


# --------------------------------------------------------------------------- server
def _reap(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _become_job(held: list[Any], request: dict[str, Any]) -> None:
    """In the forked child: turn into ``python -m sagelab.jobs._runner ARGV``; never returns.

    ``held`` are the server's sockets and lock file: closed here, so that a job which
    outlives the server neither keeps its lock nor its socket.
    """
    code = 1
    try:
        for thing in held:
            thing.close()
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = os.getcwd()  # as ``python -m`` sets it
        sys.argv = ["-m", *request["argv"]]
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()
        from sagelab.jobs._runner import main

        code = main(list(request["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(path: Path, idle_seconds: float, preload: Iterable[str]) -> int:
    """Import ``preload``, then fork a job's process for each launch until idle.

    Returns:
        0 when it ended idle, 1 when another server holds this socket's lock.
    """
    lock = path.with_suffix(".lock").open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 1
    started = time.perf_counter()
    for module in preload:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            print(f"not preloaded: {module} ({exc})", flush=True)
    print(f"preloaded in {time.perf_counter() - started:.2f} s", flush=True)
    # What the imports made lives as long as the server: out of the collector's sight,
    # a job's collections do not walk (and copy-on-write) the whole inherited heap.
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(f"{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    listener.bind(str(staging))
    os.chmod(staging, 0o600)
    listener.listen(64)
    os.replace(staging, path)  # the socket appears ready, never half-made
    inode = path.stat().st_ino
    last = time.monotonic()
    try:
        while True:
            remaining = idle_seconds - (time.monotonic() - last)
            if remaining <= 0:
                return 0
            try:
                ready, _, _ = select.select([listener], [], [], min(remaining, 5.0))
            except InterruptedError:
                continue
            if not ready:
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_ino != inode:
                        return 0  # another server took the name
                continue
            conn, _ = listener.accept()
            last = time.monotonic()
            with conn:
                _handle(conn, [listener, conn, lock])
    finally:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ino == inode:
                path.unlink()
        listener.close()
        lock.close()


def _handle(conn: socket.socket, held: list[Any]) -> None:
    conn.settimeout(_CONNECT_TIMEOUT_SECONDS)
    try:
        request = json.loads(_read_line(conn))
        if not (
            isinstance(request.get("argv"), list)
            and isinstance(request.get("env"), dict)
            and isinstance(request.get("cwd"), str)
            and isinstance(request.get("log"), str)
        ):
            raise ValueError("a launch needs argv, env, cwd and log")
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _become_job(held, request)
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagelab.jobs._forkserver")
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--idle", type=float, default=600.0)
    parser.add_argument("--preload", default=",".join(DEFAULT_PRELOAD))
    args = parser.parse_args(argv)
    preload = [m for m in args.preload.split(",") if m]
    return serve(args.socket, args.idle, preload)


if __name__ == "__main__":
    sys.exit(main())
