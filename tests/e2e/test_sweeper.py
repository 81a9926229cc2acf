"""The sweep on the real cluster: stuck and orphaned pods, each mode, the cap, and the pods it
must never touch. The session operator sweeps every 3 s; these policies call a pod stuck 10 s
after its primaries ended (the CRD's minimum)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ..kube import Kube, container_state, exit_code, job_condition, wait_for
from ..manifests import (
    EXITS_0_ON_TERM,
    SLEEP_FOREVER,
    container,
    job,
    pod_spec,
    primary,
    sidecar_policy,
)
from ..operator_process import Operator, start_operator, stop_operator

pytestmark = pytest.mark.host_operator(
    "the session operator's --sweep-interval=3 and --sweep-allow-delete, and a private operator"
)

# PID 1 ignores TERM for its first 8 s (no handler yet), then exits 0 on it: the core's stop
# comes too early, and a later sweep's stop works.
LATE_HANDLER = ["sh", "-c", "sleep 8; trap 'exit 0' TERM; while true; do sleep 1; done"]


def _policy(name: str, sweep: dict[str, Any]) -> dict[str, Any]:
    # The exit-code path: a pod finished by its phase never gets stuck for the sweep to find.
    return sidecar_policy(
        name,
        gracePeriodSeconds=3,
        finish="ExitCodes",
        sweep={"stuckAfterSeconds": 10, **sweep},
    )


def _pod(ns: Kube, job_name: str) -> dict[str, Any]:
    """The Job's one pod, once the Job controller has created it."""
    wait_for(f"a pod of Job {job_name}", lambda: ns.job_pods(job_name), timeout=60)
    [pod] = ns.job_pods(job_name)
    return pod


def _primary_ended(ns: Kube, app: str, sidecar: list[str], *first: dict[str, Any]) -> str:
    """Applies FIRST and Job `j` (labelled app=APP, primary exits 0, sidecar `proxy` running
    SIDECAR); the pod's name once its primary has ended."""
    ns.apply(
        *first,
        job(
            "j", pod_spec([primary(exit_code=0), container("proxy", sidecar)]), labels={"app": app}
        ),
    )
    name = _pod(ns, "j")["metadata"]["name"]
    ns.wait_pod(name, "primary ended", lambda p: exit_code(p, "main") == 0)
    return str(name)


def _messages(ns: Kube, kind: str, name: str, reason: str) -> list[str]:
    return [e["message"] for e in ns.events(kind, name) if e["reason"] == reason]


@pytest.mark.serial(
    "reads the policy's totalSwept, which another operator's sweep of the policy can write "
    "back from its own older count"
)
def test_terminate_runs_the_stop_again_and_the_job_completes(operator: Operator, ns: Kube) -> None:
    ns.apply(
        _policy("late", {"action": "Terminate"}),
        job(
            "j",
            pod_spec([primary(exit_code=0), container("proxy", LATE_HANDLER)]),
            labels={"app": "late"},
        ),
    )
    assert ns.wait_job("j", timeout=120) == "Complete"
    pod = _pod(ns, "j")
    name = pod["metadata"]["name"]
    assert exit_code(pod, "proxy") == 0 and pod["status"]["phase"] == "Succeeded"
    reasons = ns.reasons("Pod", name)
    assert "SidecarUnstoppable" in reasons and "PodSwept" in reasons
    [swept] = _messages(ns, "Pod", name, "PodSwept")
    assert swept.startswith("stuck: ") and "sweep action Terminate" in swept
    status = ns.get("sidecarpolicy", "late")["status"]
    assert status["sweep"]["totalSwept"] >= 1 and status["lastSweepTime"]


def test_report_changes_nothing_and_posts_events(operator: Operator, ns: Kube) -> None:
    ns.apply(
        _policy("dry", {"action": "Report"}),
        job(
            "j",
            pod_spec([primary(exit_code=0), container("proxy", SLEEP_FOREVER)]),
            labels={"app": "dry"},
        ),
    )
    name = _pod(ns, "j")["metadata"]["name"]
    ns.wait_for_reasons("Pod", name, "SidecarUnstoppable", timeout=30)
    before = (
        ns.get("pod", name)["metadata"]["resourceVersion"],
        ns.get("job", "j")["metadata"]["resourceVersion"],
    )
    ns.wait_for_reasons("Pod", name, "PodSwept", timeout=40)
    time.sleep(4)  # one more sweep
    after = (
        ns.get("pod", name)["metadata"]["resourceVersion"],
        ns.get("job", "j")["metadata"]["resourceVersion"],
    )
    assert before == after
    assert "report only: nothing changed" in _messages(ns, "Pod", name, "PodSwept")[0]
    assert "running" in container_state(ns.get("pod", name), "proxy")["state"]


def test_delete_refuses_to_rerun_succeeded_work(operator: Operator, ns: Kube) -> None:
    ns.apply(
        _policy("del", {"action": "Delete"}),
        job(
            "j",
            pod_spec([primary(exit_code=0), container("proxy", SLEEP_FOREVER)]),
            labels={"app": "del"},
        ),
    )
    name = _pod(ns, "j")["metadata"]["name"]
    ns.wait_for_reasons("Pod", name, "SweepSkipped", timeout=40)
    assert "run the work again" in _messages(ns, "Pod", name, "SweepSkipped")[0]
    assert ns.get("pod", name)["metadata"].get("deletionTimestamp") is None
    assert len(ns.job_pods("j")) == 1


def test_a_pod_no_job_controls_is_left_alone(operator: Operator, ns: Kube) -> None:
    # Deleting its Job with --cascade=orphan leaves the pod without its ownerReference: only a
    # job-name label says it was a Job's, and anyone can set that label. So Tandem says once
    # that it lets the pod go, and neither stops, sweeps nor deletes it (issues 16 and 25).
    # The positive control: a twin under the same policy, stuck (its sidecar ignores TERM) and
    # still its Job's, is judged by the same sweeps (SweepSkipped: Delete will not re-run
    # succeeded work, as in test_delete_refuses_to_rerun_succeeded_work).
    twin = job(
        "twin",
        pod_spec([primary(exit_code=0), container("proxy", SLEEP_FOREVER)]),
        labels={"app": "orphan"},
    )
    name = _primary_ended(
        ns, "orphan", SLEEP_FOREVER, _policy("orphan", {"action": "Delete"}), twin
    )
    ns.wait_for_reasons("Pod", name, "PrimariesFinished", timeout=30)  # Tandem stopped proxy
    ns.run("delete", "job", "j", "--cascade=orphan")
    wait_for(
        "the orphan without its ownerReference",
        lambda: not ns.get("pod", name)["metadata"].get("ownerReferences"),
        timeout=30,
    )
    events = ns.wait_for_reasons("Pod", name, "NotAJobPod", timeout=30)
    [told] = [e for e in events if e["reason"] == "NotAJobPod"]
    assert told["type"] == "Normal" and "no Job controls it" in told["message"], told
    time.sleep(13)  # past stuckAfterSeconds (10), over several 3-s sweeps
    pod = ns.get("pod", name)
    assert not pod["metadata"].get("deletionTimestamp")
    assert "running" in container_state(pod, "proxy")["state"]
    reasons = ns.reasons("Pod", name)
    assert "PodSwept" not in reasons and "SweepSkipped" not in reasons, reasons
    assert reasons.count("NotAJobPod") == 1
    ns.wait_for_reasons("Pod", _pod(ns, "twin")["metadata"]["name"], "SweepSkipped", timeout=30)


def test_the_cap_bounds_each_sweep(operator: Operator, ns: Kube) -> None:
    ns.apply(
        _policy("capped", {"action": "Terminate", "maxActionsPerSweep": 1}),
        *(
            job(
                f"j{i}",
                pod_spec([primary(exit_code=0), container("proxy", LATE_HANDLER)]),
                labels={"app": "capped"},
            )
            for i in range(3)
        ),
    )
    for i in range(3):
        assert ns.wait_job(f"j{i}", timeout=150) == "Complete"
    skipped = [
        m
        for i in range(3)
        for m in _messages(ns, "Pod", _pod(ns, f"j{i}")["metadata"]["name"], "SweepSkipped")
    ]
    assert skipped and all("the cap of 1 actions per sweep" in m for m in skipped)
    swept_at = sorted(
        e["firstTimestamp"] or e["eventTime"]
        for i in range(3)
        for e in ns.events("Pod", _pod(ns, f"j{i}")["metadata"]["name"])
        if e["reason"] == "PodSwept"
    )
    assert len(swept_at) == 3 and len(set(swept_at)) == 3  # one per sweep, never two at once


def test_a_policy_created_after_the_primaries_ended_still_gets_its_sweep(
    operator: Operator, ns: Kube
) -> None:
    """No pod event follows the policy's creation; the sweep finds the pod all the same."""
    name = _primary_ended(ns, "late-policy", EXITS_0_ON_TERM)
    assert "SidecarStopSent" not in ns.reasons("Pod", name)  # no policy yet, nothing done
    ns.apply(_policy("late-policy", {"action": "Terminate"}))
    assert ns.wait_job("j", timeout=90) == "Complete"
    [swept] = _messages(ns, "Pod", name, "PodSwept")
    assert swept.startswith("stuck: ") and "sweep action Terminate" in swept
    assert exit_code(ns.get("pod", name), "proxy") == 0


def test_a_running_primary_is_never_swept(operator: Operator, ns: Kube) -> None:
    ns.apply(
        _policy("busy", {"action": "Delete"}),
        job(
            "j",
            pod_spec([primary(exit_code=0, after=60), container("proxy", SLEEP_FOREVER)]),
            labels={"app": "busy"},
        ),
        # The positive control, in the same window and under the same policy: its primary ends
        # at once, so the sweep must find it stuck (and refuse to delete succeeded work). A dead
        # or blind sweeper fails here instead of passing the assertions below.
        job(
            "control",
            pod_spec([primary(exit_code=0), container("proxy", SLEEP_FOREVER)]),
            labels={"app": "busy"},
        ),
    )
    name = _pod(ns, "j")["metadata"]["name"]
    control = _pod(ns, "control")["metadata"]["name"]
    ns.wait_for_reasons("Pod", control, "SweepSkipped", timeout=40)  # past stuckAfterSeconds
    assert "run the work again" in _messages(ns, "Pod", control, "SweepSkipped")[0]
    reasons = ns.reasons("Pod", name)
    assert "PodSwept" not in reasons and "SweepSkipped" not in reasons
    pod = ns.get("pod", name)
    assert pod["status"]["phase"] == "Running"
    assert "running" in container_state(pod, "main")["state"]  # still within its 60 s


def test_a_cronjob_pile_up_is_cleaned_when_tandem_starts(
    local_cluster: Any, operator_rbac: None, ns: Kube, tmp_path: Any
) -> None:
    # The session operator ignores pods labelled for a private one, so this is "operator down".
    labels = {"e2e.tandem.dev/operator": "pile-up"}
    template = pod_spec([primary(exit_code=0), container("proxy", EXITS_0_ON_TERM)])
    ns.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "pile"},
            "spec": {
                "schedule": "0 0 1 1 *",
                "suspend": True,
                "successfulJobsHistoryLimit": 1,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {
                                "labels": labels,
                                "annotations": {
                                    "tandem.dev/primary": "main",
                                    "tandem.dev/finish": "ExitCodes",
                                },
                            },
                            "spec": template,
                        },
                    }
                },
            },
        }
    )
    for run in range(4):
        ns.run("create", "job", f"pile-{run}", "--from=cronjob/pile")
    pods = wait_for(
        "four stuck pods",
        lambda: (
            p
            if len(p := ns.pods("e2e.tandem.dev/operator=pile-up")) == 4
            and all(exit_code(x, "main") == 0 for x in p)
            else None
        ),
        timeout=60,
    )
    assert all(x["status"]["phase"] == "Running" for x in pods)
    time.sleep(3)
    assert all(j["status"].get("active") == 1 for j in ns.get("jobs")["items"])
    private = start_operator(
        local_cluster,
        tmp_path / "private.log",
        "--pod-selector=e2e.tandem.dev/operator=pile-up",
        "--sweep-interval=3",
    )
    try:
        # Every pod ends, every Job completes, and the CronJob controller then keeps one Job.
        def cleaned() -> list[dict[str, Any]] | None:
            jobs = ns.get("jobs")["items"]
            return jobs if len(jobs) == 1 and job_condition(jobs[0]) == "Complete" else None

        [kept] = wait_for("pile cleaned within the history limit", cleaned, timeout=90)
        assert len(ns.pods("e2e.tandem.dev/operator=pile-up")) == 1
        for pod in pods:
            assert "SidecarStopped" in ns.reasons("Pod", pod["metadata"]["name"])
        assert kept["metadata"]["name"].startswith("pile-")
    finally:
        stop_operator(private)
