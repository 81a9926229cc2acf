"""kube-apiserver restarted while Job pods finish: no pod is missed, and the operator stays up.

Ten Jobs run on the real kubelet, each with a sidecar that exits 0 on TERM. Their primaries wait
for a file on a hostPath, so the test ends them one by one, a few seconds apart, without the API,
while kube-apiserver is stopped by its pid and started again through the harness. Some primaries
end before the stop, some while the API is down, some while it comes back. Afterwards every Job
is Complete, every sidecar exited 0, every pod got exactly one stop that ran (one that found no
API server did not run, and is sent again), and the operator's process never went away. The
figures printed: the restart's timeline, when the operator's watch came back, and how long after
the API was ready the operator resumed stopping sidecars.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster import Layout, cluster

from ..kube import Kube, all_running, exit_code, wait_for
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec
from ..operator_process import Operator, dedicated_operator

pytestmark = pytest.mark.serial("restarts the API server")

JOBS = 10
GAP = 3.0
"""Seconds between two primaries' ends."""
STOP_AFTER = 3.5
"""Seconds after the first primary's end at which the apiserver is stopped."""
DOWN_FOR = 2.0
"""Seconds the API stays down once the process is gone."""
SELECTOR = "e2e.tandem.dev/operator=apiserver-restart"
LABEL = {"e2e.tandem.dev/operator": "apiserver-restart"}
_STOPPING = re.compile(r"^(\S+ \S+) INFO tandem\.reconciler: pod [^/]+/(\S+): stopping proxy")
_OUTCOME = re.compile(r"exec into [^/]+/(\S+)\[proxy\] for proxy: .* -> exit (\S+)")


@pytest.fixture
def restart_operator(
    local_cluster: Layout, operator_rbac: None, tmp_path: Path
) -> Iterator[Operator]:
    with dedicated_operator(
        local_cluster, tmp_path / "operator.log", "apiserver-restart"
    ) as running:
        yield running


@pytest.fixture
def signals(ns: Kube) -> Iterator[Path]:
    """A host directory the primaries watch (hostPath: the real node is this machine)."""
    path = Path(f"/tmp/tandem-e2e-{ns.namespace}")
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _job(index: int, signals: Path) -> dict[str, Any]:
    primary = container(
        "main",
        ["sh", "-c", f"while [ ! -f /signals/go-{index} ]; do sleep 0.1; done; exit 0"],
        volumeMounts=[{"name": "signals", "mountPath": "/signals", "readOnly": True}],
    )
    spec = pod_spec(
        [primary, container("proxy", EXITS_0_ON_TERM)],
        volumes=[{"name": "signals", "hostPath": {"path": str(signals), "type": "Directory"}}],
    )
    # The exit-code path: one exec per sidecar is what the restart must not repeat.
    annotations = {"tandem.dev/primary": "main", "tandem.dev/finish": "ExitCodes"}
    return job(f"j{index}", spec, annotations=annotations, labels=LABEL)


def _log_time(stamp: str) -> float:
    """The operator's log timestamps (local time, `2026-01-01 12:00:00,123`) as time.time()."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _audit_time(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _audit(layout: Layout, since: float, needle: str) -> list[dict[str, Any]]:
    """Audit entries (final stage) received after SINCE whose line contains NEEDLE, oldest first,
    with `at`: when the apiserver received the request."""
    found = []
    with open(layout.logs / "audit.log") as audit:
        for line in audit:
            if needle not in line:
                continue
            entry = json.loads(line)
            at = _audit_time(entry["requestReceivedTimestamp"])
            if at >= since and entry["stage"] in ("ResponseStarted", "ResponseComplete"):
                found.append({**entry, "at": at})
    return sorted(found, key=lambda e: e["at"])


def _kopf_pod_reads(layout: Layout, since: float) -> list[dict[str, Any]]:
    """The operator's (kopf's) lists and watches of its pods after SINCE."""
    return [
        e
        for e in _audit(layout, since, "apiserver-restart")
        if e["user"]["username"] == "tandem-operator"
        and e.get("userAgent", "").startswith("kopf")
        and e.get("objectRef", {}).get("resource") == "pods"
        and e["verb"] in ("list", "watch")
    ]


def _kubelet_status_writes(layout: Layout, namespace: str, since: float) -> dict[str, list[float]]:
    """When the kubelet wrote each pod's status after SINCE."""
    writes: dict[str, list[float]] = {}
    for e in _audit(layout, since, namespace):
        ref = e.get("objectRef", {})
        if e["user"]["username"] == "system:node:tandem-node" and ref.get("namespace") == namespace:
            writes.setdefault(ref["name"], []).append(e["at"])
    return writes


def test_no_pod_is_missed_when_the_apiserver_restarts_mid_run(
    restart_operator: Operator, ns: Kube, signals: Path, local_cluster: Layout
) -> None:
    ns.apply(*(_job(i, signals) for i in range(JOBS)))

    def pods() -> list[dict[str, Any]] | None:
        found = ns.pods(SELECTOR)
        return found if len(found) == JOBS and all(all_running(p) for p in found) else None

    by_job = {p["metadata"]["labels"]["job-name"]: p["metadata"]["name"] for p in wait_for(
        "every pod running", pods, timeout=180
    )}  # fmt: skip

    released: dict[str, float] = {}

    def release() -> None:
        for i in range(JOBS):
            (signals / f"go-{i}").touch()
            released[by_job[f"j{i}"]] = time.time()
            time.sleep(GAP)

    releaser = threading.Thread(target=release)
    releaser.start()
    time.sleep(STOP_AFTER)
    restart = cluster.restart_apiserver(local_cluster, down_for=DOWN_FOR)
    releaser.join()

    for i in range(JOBS):
        assert ns.wait_job(f"j{i}", timeout=180) == "Complete", f"j{i}"
    for name in by_job.values():
        pod = ns.get("pod", name)
        assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0), name
        assert pod["status"]["phase"] == "Succeeded", name
    # Exactly one stop per pod: the Events say so, and so does the operator's own log.
    for name in by_job.values():
        events = ns.wait_for_reasons("Pod", name, "SidecarStopSent", "SidecarStopped")
        assert [e["reason"] for e in events].count("SidecarStopSent") == 1, name
    # A stop that found no API server at all did not run, and is sent again once it is back;
    # every stop that ran, ran once.
    log = restart_operator.log_text()
    stops: dict[str, float] = {}
    delivered: Counter[str] = Counter()
    for line in log.splitlines():
        if match := _STOPPING.match(line):
            stops.setdefault(match.group(2), _log_time(match.group(1)))
        if outcome := _OUTCOME.search(line):
            if outcome.group(2) == "None":
                assert "Connection refused" in line, line
            else:
                assert outcome.group(2) in ("0", "137"), line
                delivered[outcome.group(1)] += 1
    assert set(stops) == set(by_job.values())
    assert delivered == dict.fromkeys(by_job.values(), 1), delivered
    assert restart_operator.process.poll() is None, "the operator exited"
    url = f"http://127.0.0.1:{restart_operator.liveness_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200

    _print_figures(local_cluster, ns.namespace, restart, released, stops)


def _print_figures(
    layout: Layout,
    namespace: str,
    restart: cluster.Restart,
    released: dict[str, float],
    stops: dict[str, float],
) -> None:
    t0 = min(released.values())
    print(
        f"\napiserver: TERM at +{restart.stopping - t0:.2f} s, gone at +{restart.stopped - t0:.2f}"
        f" s, started at +{restart.started - t0:.2f} s, ready at +{restart.ready - t0:.2f} s "
        f"(unavailable {restart.ready - restart.stopping:.2f} s)"
    )
    reads = _kopf_pod_reads(layout, restart.started)
    assert reads, "no list or watch of pods by the operator after the restart"
    relist = next((r for r in reads if r["verb"] == "list"), None)
    watch = next(r for r in reads if r["verb"] == "watch" and r["at"] >= (relist or reads[0])["at"])
    print(
        f"operator's pods watch back {watch['at'] - restart.ready:+.2f} s from ready"
        + (f", after a relist at {relist['at'] - restart.ready:+.2f} s" if relist else "")
    )
    # No stop can start while the API is gone: the first one after is the operator resuming.
    resumed = min(at for at in stops.values() if at >= restart.stopped)
    print(
        f"operator's first stop after the restart: {resumed - restart.started:.2f} s after the "
        f"apiserver started, {resumed - restart.ready:+.2f} s from ready"
    )
    # A primary that ended while the API was down shows only once the kubelet writes the pod's
    # status again; the operator cannot react before that write.
    writes = _kubelet_status_writes(layout, namespace, restart.started)
    reactions = {}
    for name, stopped_at in stops.items():
        before = [w for w in writes.get(name, []) if w <= stopped_at]
        if stopped_at >= restart.stopped and before:
            reactions[name] = stopped_at - before[-1]
    first_write = min(w for ws in writes.values() for w in ws)
    print(
        f"kubelet's first status write after the restart: {first_write - restart.ready:+.2f} s "
        f"from ready; operator's stop after the kubelet's last write, per pod stopped after the "
        f"restart: max {max(reactions.values()) * 1000:.0f} ms over {len(reactions)} pods"
    )
    print("pod    released   stopped   primary end -> stop")
    for name, at in sorted(released.items(), key=lambda item: item[1]):
        phase = (
            "before the stop"
            if at < restart.stopping
            else "API stopping"
            if at < restart.stopped
            else "API down"
            if at < restart.started
            else "API starting"
            if at < restart.ready
            else "API ready"
        )
        print(
            f"{name}  +{at - t0:5.2f} s  +{stops[name] - t0:6.2f} s  {stops[name] - at:6.2f} s"
            f"  ({phase})"
        )
