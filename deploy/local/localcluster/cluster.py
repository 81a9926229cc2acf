"""Brings the whole local cluster up and down.

Order matters both ways: the runtime and etcd come before the control plane, and on the way down the
containers are removed before containerd stops, because stopping the kubelet leaves them running.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from . import components, kwok, network, pki, runtime, supervisor
from .kubectl import HERE, ClusterError, kubectl, log
from .layout import Layout

# (process name, command builder); every one runs inside the netns.
_API: list[tuple[str, Callable[[Layout], list[str]]]] = [
    ("etcd", components.etcd),
    ("kube-apiserver", components.kube_apiserver),
]
# Started once the API server is ready: the controller manager exits if RBAC is not bootstrapped.
_REST: list[tuple[str, Callable[[Layout], list[str]]]] = [
    ("kube-controller-manager", components.kube_controller_manager),
    ("kube-scheduler", components.kube_scheduler),
    ("kubelet", components.kubelet),
    ("kube-proxy", components.kube_proxy),
]


def build(layout: Layout) -> None:
    """Builds the binaries and images, the operator's included (cached by version and content;
    fast when warm)."""
    env = {
        "K8S_VERSION": layout.k8s_version,
        "ETCD_VERSION": layout.etcd_version,
        "KWOK_VERSION": layout.kwok_version,
        "HELM_VERSION": layout.helm_version,
        "TANDEM_CACHE": str(layout.cache),
    }
    subprocess.run(["bash", str(HERE / "build.sh")], check=True, env={**os.environ, **env})
    subprocess.run(
        [
            sys.executable,
            str(HERE / "images" / "build_images.py"),
            "--out",
            str(layout.cache / "images"),
        ],
        check=True,
    )
    # The operator's own image (debootstrap and wheels: minutes when cold), built here rather
    # than inside a test, so that no test's timeout has to cover it.
    subprocess.run(
        [
            sys.executable,
            str(HERE / "images" / "operator_image.py"),
            "--out",
            str(layout.cache / "images"),
            "--cache",
            str(layout.cache),
        ],
        check=True,
    )


def _wait(
    what: str, ready: Callable[[], bool], timeout: float, layout: Layout, logs: list[str]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    tails = "".join(supervisor.log_tail(layout, name) for name in logs)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


def _apiserver_ready(layout: Layout) -> bool:
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    try:
        with urllib.request.urlopen(f"{layout.server}/readyz", context=context, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _node_ready(layout: Layout) -> bool:
    done = kubectl(layout, "get", "node", layout.node_name, "-o", "json", check=False)
    if done.returncode != 0:
        return False
    conditions = json.loads(done.stdout)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _start_all(layout: Layout, specs: list[tuple[str, Callable[[Layout], list[str]]]]) -> None:
    for name, builder in specs:
        if not supervisor.running(layout, name):
            supervisor.start(layout, name, network.in_netns(layout, builder(layout)))


def up(layout: Layout, with_kwok: bool = True) -> float:
    """Starts everything and waits for a Ready node; returns the seconds it took."""
    started = time.monotonic()
    if layout.state.exists() and not supervisor.running(layout, "kube-apiserver"):
        log("leftovers of an earlier cluster found; cleaning them first")
        down(layout)
    for path in (layout.state, layout.logs):
        path.mkdir(parents=True, exist_ok=True)
    pki.make_pki(layout)
    network.create(layout)
    runtime.write_config(layout)
    if not supervisor.running(layout, "containerd"):
        supervisor.start(layout, "containerd", network.in_netns(layout, runtime.command(layout)))
    _wait(
        "containerd",
        lambda: runtime.ctr(layout, "version").returncode == 0,
        30,
        layout,
        ["containerd"],
    )
    _import_images(layout)
    _start_all(layout, _API)
    _wait(
        "kube-apiserver /readyz",
        lambda: _apiserver_ready(layout),
        90,
        layout,
        ["etcd", "kube-apiserver"],
    )
    _start_all(layout, _REST)
    _wait(
        f"node {layout.node_name} Ready",
        lambda: _node_ready(layout),
        90,
        layout,
        ["kubelet", "containerd", "kube-proxy"],
    )
    _wait(
        "the default service account",
        lambda: kubectl(layout, "get", "sa", "default", check=False).returncode == 0,
        60,
        layout,
        ["kube-controller-manager"],
    )
    if with_kwok:
        kwok.start(layout)
    elapsed = time.monotonic() - started
    log(f"cluster ready in {elapsed:.1f}s; export KUBECONFIG={layout.admin_kubeconfig}")
    return elapsed


def _import_images(layout: Layout) -> None:
    subprocess.run(
        [
            sys.executable,
            str(HERE / "images" / "build_images.py"),
            "--out",
            str(layout.cache / "images"),
            "--import",
            "--address",
            str(layout.containerd_socket),
        ],
        check=True,
    )


@dataclasses.dataclass(frozen=True)
class Restart:
    """Wall-clock times (time.time()) of an apiserver restart."""

    stopping: float
    """TERM sent."""
    stopped: float
    """The process is gone: the API is unreachable from here on."""
    started: float
    ready: float
    """/readyz answered 200 again."""


def _restart(
    layout: Layout,
    name: str,
    ready: tuple[str, Callable[[], bool]],
    down_for: float,
    timeout: float,
) -> Restart:
    """Stops component NAME by its pid (TERM, then KILL), leaves it down for DOWN_FOR more
    seconds, starts it again with the same command line, and returns once READY holds."""
    stopping = time.time()
    supervisor.stop(layout, name)
    stopped = time.time()
    time.sleep(down_for)
    started = time.time()
    _start_all(layout, [spec for spec in (*_API, *_REST) if spec[0] == name])
    _wait(ready[0], ready[1], timeout, layout, [name])
    return Restart(stopping, stopped, started, time.time())


def restart_apiserver(layout: Layout, down_for: float = 0.0, timeout: float = 90.0) -> Restart:
    """The resilience tests' apiserver restart: everything else (etcd, the kubelet, the
    controllers, their clients) keeps running; returns once /readyz answers again."""
    ready = ("kube-apiserver /readyz", lambda: _apiserver_ready(layout))
    return _restart(layout, "kube-apiserver", ready, down_for, timeout)


def restart_kubelet(layout: Layout, down_for: float = 0.0, timeout: float = 60.0) -> Restart:
    """The kubelet restarted, as on a node upgrade: the containers keep running meanwhile; returns
    once the new kubelet answers /healthz through the API server."""
    ready = ("kubelet /healthz", lambda: _kubelet_healthy(layout))
    return _restart(layout, "kubelet", ready, down_for, timeout)


def _kubelet_healthy(layout: Layout) -> bool:
    path = f"/api/v1/nodes/{layout.node_name}/proxy/healthz"
    done = kubectl(layout, "get", "--raw", path, check=False)
    return done.returncode == 0 and done.stdout.strip() == "ok"


def is_up(layout: Layout) -> bool:
    return supervisor.running(layout, "kube-apiserver") and _apiserver_ready(layout)


def _unmount_under(root: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    prefix = str(root) + "/"
    for mountpoint in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)


def down(layout: Layout, keep_logs: bool = False) -> float:
    """Stops every process by pid and removes mounts, network namespaces and state."""
    started = time.monotonic()
    # "tandem" is the operator that the demo starts on the host, if it did.
    for name in ("tandem", "kwok", "kube-proxy", "kubelet"):
        supervisor.stop(layout, name)
    if supervisor.running(layout, "containerd"):
        runtime.remove_all_containers(layout)
    for name in (
        "containerd",
        "kube-scheduler",
        "kube-controller-manager",
        "kube-apiserver",
        "etcd",
    ):
        supervisor.stop(layout, name)
    _unmount_under(layout.state)
    network.remove_pod_netns()
    network.delete(layout)
    if layout.state.exists():
        if keep_logs and layout.logs.exists():
            kept = layout.state.parent / (layout.state.name + "-logs")
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(layout.logs, kept)
        shutil.rmtree(layout.state, ignore_errors=True)
    elapsed = time.monotonic() - started
    log(f"cluster removed in {elapsed:.1f}s")
    return elapsed
