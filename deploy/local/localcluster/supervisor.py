"""Starts the cluster's processes detached, with a log and a pid file each, and stops them by pid.

The pid files let a later `down` (another process) stop what an earlier `up` started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .layout import Layout


def start(layout: Layout, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.pids.mkdir(parents=True, exist_ok=True)
    with open(layout.logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    (layout.pids / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def pid_of(layout: Layout, name: str) -> int | None:
    path = layout.pids / f"{name}.pid"
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def running(layout: Layout, name: str) -> bool:
    return pid_of(layout, name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone; reap it if it is our child.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


def stop(layout: Layout, name: str, timeout: float = 15.0) -> None:
    """TERM, then KILL after TIMEOUT: kube-apiserver sometimes ignores TERM for longer."""
    pid = pid_of(layout, name)
    if pid is not None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _alive(pid):
                break
    (layout.pids / f"{name}.pid").unlink(missing_ok=True)


def log_tail(layout: Layout, name: str, lines: int = 25) -> str:
    path = layout.logs / f"{name}.log"
    if not path.exists():
        return f"--- {name}: no log\n"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {name} ({path}) ---\n" + "\n".join(text) + "\n"
