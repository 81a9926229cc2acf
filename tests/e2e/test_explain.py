"""`tandem explain` on a running, a finished and a stuck pod, as a person would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from localcluster import Layout

from ..kube import Kube, exit_code
from ..manifests import EXITS_0_ON_TERM, SLEEP_FOREVER, container, job, pod_spec, primary
from ..operator_process import ROOT, Operator

PRIMARY = {
    "tandem.dev/primary": "main",
    "tandem.dev/grace-period-seconds": "3",
    "tandem.dev/finish": "ExitCodes",  # the stops and their ends are what explain shows here
}


def _explain(layout: Layout, ns: Kube, pod: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tandem",
            "explain",
            pod,
            "-n",
            ns.namespace,
            f"--kubeconfig={layout.admin_kubeconfig}",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def _pod(ns: Kube, job_name: str) -> str:
    [pod] = ns.wait_job_pods(job_name)
    return str(pod["metadata"]["name"])


def test_a_running_pod(operator: Operator, local_cluster: Layout, ns: Kube) -> None:
    ns.apply(
        job(
            "j",
            pod_spec([primary(after=120), container("proxy", EXITS_0_ON_TERM)]),
            annotations=PRIMARY,
        )
    )
    name = _pod(ns, "j")
    ns.wait_pod(name, "running", lambda p: p["status"].get("phase") == "Running")
    out = _explain(local_cluster, ns, name)
    assert out.returncode == 0, out.stderr
    assert "Managed by Tandem: yes (annotation)" in out.stdout
    assert "main                 primary  running" in out.stdout
    assert "proxy                sidecar  running" in out.stdout
    assert "Now: waiting for the primaries to end: main still running" in out.stdout


def test_a_finished_pod_as_json(operator: Operator, local_cluster: Layout, ns: Kube) -> None:
    ns.apply(
        job("j", pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]), annotations=PRIMARY)
    )
    assert ns.wait_job("j") == "Complete"
    name = _pod(ns, "j")
    ns.wait_for_reasons("Pod", name, "SidecarStopped")
    found: dict[str, Any] = json.loads(_explain(local_cluster, ns, name, "-o", "json").stdout)
    assert found["managed"] and found["phase"] == "Succeeded"
    assert {(c["name"], c["role"], c["exit_code"]) for c in found["containers"]} == {
        ("main", "primary", 0),
        ("proxy", "sidecar", 0),
    }
    reasons = [e["reason"] for e in found["events"]]
    assert reasons.index("PrimariesFinished") < reasons.index("SidecarStopped")
    assert found["status"].startswith("finished: the pod is Succeeded")


def test_a_stuck_pod_says_why_and_the_fix(
    operator: Operator, local_cluster: Layout, ns: Kube
) -> None:
    ns.apply(
        job("j", pod_spec([primary(), container("proxy", SLEEP_FOREVER)]), annotations=PRIMARY)
    )
    name = _pod(ns, "j")
    ns.wait_for_reasons("Pod", name, "SidecarUnstoppable", timeout=40)
    assert exit_code(ns.get("pod", name), "main") == 0
    out = _explain(local_cluster, ns, name).stdout
    assert "Now: Tandem cannot finish this pod: Tandem cannot stop proxy" in out
    assert "shareProcessNamespace" in out


def test_an_unmanaged_pod_and_a_missing_one(
    operator: Operator, local_cluster: Layout, ns: Kube
) -> None:
    ns.apply(job("j", pod_spec([primary(after=60)])))
    name = _pod(ns, "j")
    out = _explain(local_cluster, ns, name).stdout
    assert "Managed by Tandem: no" in out and "Now: not managed" in out
    missing = _explain(local_cluster, ns, "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr
