"""Hostile input on the real cluster: the API refuses an injection, a `nan` grace period is
refused with a Warning while other pods are stopped on time, a sidecar that answers an exec
with 100 MB leaves the operator's memory where it was, and pods that only claim to be a Job's
(the job-name label and `tandem.dev/primary` on a ReplicaSet's pods and on a bare pod) are never
written while the real Job next to them completes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster import Layout

from ..kube import Kube, PhaseWatch, condition, container_state, exit_code, wait_for
from ..kwok_workload import peak_rss_and_cpu
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary, sidecar_policy
from ..operator_process import Operator, dedicated_operator

LABEL = {"e2e.tandem.dev/operator": "hostile"}
INJECTION = "/$(echo${IFS}INJECTED>&2)"
PRIMARY = {"tandem.dev/primary": "main"}
JOB_NAME = "batch.kubernetes.io/job-name"


def test_an_injection_in_an_http_path_is_refused_by_the_api(ns: Kube) -> None:
    policy = sidecar_policy(
        "inject", sidecars=[{"name": "proxy", "onSuccess": {"httpGet": {"port": 80, "path": "/"}}}]
    )
    for path in (INJECTION, "/`id`", "/a;b", "/a|b", "/'a'", '/"a"', "/#a"):
        policy["spec"]["sidecars"][0]["onSuccess"]["httpGet"]["path"] = path
        refused = ns.create(policy, check=False)
        assert refused.returncode != 0, path
        assert "spec.sidecars[0].onSuccess.httpGet.path" in refused.stderr, refused.stderr
    policy["spec"]["sidecars"][0]["onSuccess"]["httpGet"]["path"] = "/quit?now=1"
    assert ns.create(policy, check=False).returncode == 0


def test_a_nan_grace_period_is_refused_with_a_warning_and_other_pods_stop_on_time(
    operator: object, ns: Kube
) -> None:
    spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
    bad = {"tandem.dev/primary": "main", "tandem.dev/grace-period-seconds": "nan"}
    ns.apply(job("bad", spec, annotations=bad))
    ns.apply(job("good", spec, annotations={"tandem.dev/primary": "main"}))
    started = time.monotonic()
    assert ns.wait_job("good") == "Complete"
    took = time.monotonic() - started
    [bad_pod] = ns.wait_job_pods("bad")
    events = ns.wait_for_reasons("Pod", bad_pod["metadata"]["name"], "InvalidAnnotation")
    [warning] = [e for e in events if e["reason"] == "InvalidAnnotation"]
    assert warning["type"] == "Warning" and "grace-period-seconds" in warning["message"]
    assert "nan" in warning["message"]
    # Left alone: no phase written, the proxy still runs.
    bad_pod = ns.get("pod", bad_pod["metadata"]["name"])
    assert bad_pod["status"]["phase"] == "Running" and exit_code(bad_pod, "proxy") is None
    print(f"\nthe good Job completed {took:.1f} s after both were applied")


@pytest.fixture(scope="module")
def exec_operator(
    local_cluster: Layout, operator_rbac: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    log = tmp_path_factory.mktemp("hostile") / "operator.log"
    with dedicated_operator(local_cluster, log, "hostile", "--allow-exec-actions") as running:
        yield running


def test_100_mb_of_exec_output_leaves_the_operators_memory_alone(
    exec_operator: Operator, ns: Kube
) -> None:
    flood = ["sh", "-c", "head -c 100000000 /dev/zero; kill 1"]
    ns.apply(
        sidecar_policy(
            "flood",
            finish="ExitCodes",
            sidecars=[{"name": "proxy", "onSuccess": {"exec": {"command": flood}}}],
        )
    )
    rss_before, peak_before, _ = peak_rss_and_cpu(exec_operator.process.pid)
    spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
    ns.apply(job("j", spec, labels={**LABEL, "app": "flood"}))
    [pod] = ns.wait_job_pods("j")
    events = ns.wait_for_reasons("Pod", pod["metadata"]["name"], "SidecarStopFailed", timeout=90)
    # Capped, it may have run: told unconfirmed, and sent once more if the sidecar still runs
    # after its grace period (tests/e2e/test_unanswered_stop.py).
    failed = [e for e in events if e["reason"] == "SidecarStopFailed"]
    assert failed and all("more than" in e["message"] for e in failed), failed
    assert not any(flood[2] in e["message"] for e in failed), "the command's argv reached an Event"
    rss, peak, _ = peak_rss_and_cpu(exec_operator.process.pid)
    print(f"\noperator RSS {rss_before:.0f} -> {rss:.0f} MiB, peak {peak_before:.0f} -> {peak:.0f}")
    assert exec_operator.process.poll() is None
    assert peak - peak_before < 32, "the output was buffered"
    assert peak < 256


def _forged_pod_template(app: str) -> dict[str, Any]:
    """What a Job's pod template would hold, but for no Job: the job-name label, the opt-in
    annotation, a primary that exits 0 after 1 s and a sidecar that exits 0 on TERM."""
    return {
        "metadata": {"labels": {JOB_NAME: "forged", "app": app}, "annotations": PRIMARY},
        "spec": pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]),
    }


def _never_written(pod: dict[str, Any]) -> None:
    """Tandem wrote nothing on POD: it runs, with its sidecar, and has no Finished condition and
    no `tandem.dev/finished` annotation."""
    name = pod["metadata"]["name"]
    assert pod["status"]["phase"] == "Running", (name, pod["status"])
    assert "running" in container_state(pod, "proxy").get("state", {}), (name, pod["status"])
    assert condition(pod, "tandem.dev/Finished") is None, (name, pod["status"])
    annotations = pod["metadata"].get("annotations") or {}
    assert "tandem.dev/finished" not in annotations, (name, annotations)


def _told_not_a_job_pod(ns: Kube, name: str, because: str) -> None:
    """Tandem's only Event on pod NAME is one NotAJobPod Warning, whose message says BECAUSE."""
    ns.wait_for_reasons("Pod", name, "NotAJobPod", timeout=30)
    tandems = [e for e in ns.events("Pod", name) if e.get("reportingComponent") == "tandem"]
    assert [(e["type"], e["reason"]) for e in tandems] == [("Warning", "NotAJobPod")], tandems
    assert because in tandems[0]["message"], tandems[0]["message"]


def test_pods_that_only_claim_to_be_a_jobs_are_never_written(operator: object, ns: Kube) -> None:
    # Issue 25: a label is no gate. A ReplicaSet whose pods carry the job-name label and the
    # opt-in annotation, a bare pod the same under restartPolicy Never, and a real Job beside
    # them, all applied at once. Before the fix Tandem wrote Succeeded on each ReplicaSet pod as
    # its primary exited (the kubelet would have restarted it), and the ReplicaSet replaced it.
    watch = PhaseWatch(ns)
    try:
        template = _forged_pod_template("forged-rs")
        template["spec"]["restartPolicy"] = "Always"
        replica_set = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "forged"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "forged-rs"}},
                "template": template,
            },
        }
        bare = _forged_pod_template("forged-bare")
        bare = {"apiVersion": "v1", "kind": "Pod", **bare}
        bare["metadata"] = {**bare["metadata"], "name": "bare"}
        assert bare["spec"]["restartPolicy"] == "Never"
        spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
        ns.apply(replica_set, bare, job("real", spec, annotations=PRIMARY))

        # The positive control: Tandem is there and finishes the real Job's pod.
        assert ns.wait_job("real") == "Complete"

        # The bare pod: its primary exited 0, and 10 s later it still runs with its sidecar.
        ns.wait_pod("bare", "main exited", lambda p: exit_code(p, "main") == 0, timeout=60)
        ended = time.monotonic()
        history = ns.pod_history(
            "bare", "10 s after main exited", lambda _: time.monotonic() - ended >= 10, 30
        )
        for pod in history:
            _never_written(pod)
        _told_not_a_job_pod(ns, "bare", "no Job controls it")

        # The ReplicaSet's pods: the kubelet restarts their primary, again and again, in place.
        def restarted_twice() -> list[dict[str, Any]] | None:
            replicas = ns.pods("app=forged-rs")
            if len(replicas) > 2 or any(
                p["status"].get("phase") in ("Succeeded", "Failed") for p in replicas
            ):
                return replicas  # written, and replaced: the assertions below say so
            counts = [container_state(p, "main").get("restartCount", 0) for p in replicas]
            return replicas if len(replicas) == 2 and min(counts) >= 2 else None

        replicas = wait_for("the ReplicaSet's primaries restarted twice", restarted_twice, 90)
        assert len(replicas) == 2, [p["metadata"]["name"] for p in replicas]  # none replaced
        for pod in replicas:
            _never_written(pod)
            _told_not_a_job_pod(ns, pod["metadata"]["name"], "ReplicaSet forged")
        # Never terminal, not even for a moment, as a watch on the pods saw them.
        for name in [p["metadata"]["name"] for p in replicas] + ["bare"]:
            assert set(watch.phases(name)) <= {"Pending", "Running"}, (name, watch.phases(name))
    finally:
        watch.close()
