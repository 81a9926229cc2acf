"""kubectl at the cluster's version, with the admin kubeconfig; and the harness's error type."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from .layout import Layout

HERE = Path(__file__).resolve().parent.parent
"""deploy/local: the build script, images and kwok stages live here."""


class ClusterError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def kubectl(
    layout: Layout, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(layout.kubectl), f"--kubeconfig={layout.admin_kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done
