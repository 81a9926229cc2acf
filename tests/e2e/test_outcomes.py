"""The operator against the real kubelet, in both finishing modes.

`finish: ExitCodes`: every sidecar ends with the class of exit code that matches its primaries,
and the pod and the Job end the way Kubernetes' own rules say. Matrix: restartPolicy {Never,
OnFailure} x primary exit {0, 3} x sidecar {exits 0 on TERM, exits 143 on TERM, haproxy}.

`finish: Phase` (the default): the pod and the Job end with the primaries' outcome whatever the
sidecar exits, with one PodFinished. Matrix: Never x {0, 3} and OnFailure x {0}, x the same
sidecars. A failure under OnFailure (a restart in tandem, or a replaced pod) is in test_finish.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..kube import Kube, condition, container_state, exit_code
from ..manifests import (
    EXITS_0_ON_TERM,
    EXITS_143_ON_TERM,
    HAPROXY,
    container,
    job,
    pod_spec,
    primary,
)
from ..operator_process import Operator

SIDECARS = {
    "exits0": container("proxy", EXITS_0_ON_TERM),
    "exits143": container("proxy", EXITS_143_ON_TERM),
    # Debian's haproxy 2.6 in master-worker mode: the master exits 0 on TERM (hard stop).
    "haproxy": container("proxy", image=HAPROXY),
}
SIDECAR_EXIT_ON_TERM = {"exits0": 0, "exits143": 143, "haproxy": 0}
# After a failure under OnFailure: a recognised haproxy (master-worker) gets INT, its documented
# non-zero stop (130), so it restarts with the primary; the others get TERM.
SIDECAR_EXIT_ON_FAILURE_STOP = {"exits0": 0, "exits143": 143, "haproxy": 130}


def policy(max_attempts: int = 2, finish: str | None = "ExitCodes") -> dict[str, Any]:
    """The matrix's SidecarPolicy; FINISH None leaves spec.finish to its default."""
    return {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "SidecarPolicy",
        "metadata": {"name": "jobs"},
        "spec": {
            "selector": {"matchLabels": {"app": "matrix"}},
            "primaryContainers": ["main"],
            "maxAttempts": max_attempts,
            "gracePeriodSeconds": 20,
            **({"finish": finish} if finish else {}),
        },
    }


def _events(ns: Kube, pod: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in ns.events("Pod", pod):
        found.setdefault(event["reason"], []).append(event["message"])
    return found


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_never_success(operator: Operator, ns: Kube, sidecar: str) -> None:
    ns.apply(
        policy(),
        job("j", pod_spec([primary(exit_code=0), SIDECARS[sidecar]]), labels={"app": "matrix"}),
    )
    expected_exit = SIDECAR_EXIT_ON_TERM[sidecar]
    assert ns.wait_job("j") == ("Complete" if expected_exit == 0 else "Failed")
    [pod] = ns.wait_job_pods("j")
    assert pod["status"]["phase"] == ("Succeeded" if expected_exit == 0 else "Failed")
    assert exit_code(pod, "main") == 0
    assert exit_code(pod, "proxy") == expected_exit
    events = ns.wait_for_reasons(
        "Pod",
        pod["metadata"]["name"],
        "PrimariesFinished",
        "SidecarStopSent",
        "SidecarStopped" if expected_exit == 0 else "SidecarExitMismatch",
    )
    if expected_exit:
        [mismatch] = _events(ns, pod["metadata"]["name"])["SidecarExitMismatch"]
        assert "exited 143" in mismatch and "exit-zero-on-sigterm" in mismatch
    assert "PrimariesFinished" in ns.reasons("Job", "j")
    told = [
        e["message"] for e in events if e["reason"] in ("SidecarStopped", "SidecarExitMismatch")
    ]
    assert [m for m in told if f"exited {expected_exit}" in m], told


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_never_failure(operator: Operator, ns: Kube, sidecar: str) -> None:
    ns.apply(
        policy(),
        job("j", pod_spec([primary(exit_code=3), SIDECARS[sidecar]]), labels={"app": "matrix"}),
    )
    assert ns.wait_job("j") == "Failed"
    [pod] = ns.wait_job_pods("j")
    pod = ns.wait_pod(pod["metadata"]["name"], "Failed", lambda p: p["status"]["phase"] == "Failed")
    assert exit_code(pod, "main") == 3
    assert exit_code(pod, "proxy") == SIDECAR_EXIT_ON_TERM[sidecar]
    ns.wait_for_reasons(
        "Pod", pod["metadata"]["name"], "PrimariesFinished", "SidecarStopSent", "SidecarStopped"
    )
    [sent] = _events(ns, pod["metadata"]["name"])["SidecarStopSent"]
    assert "outcome failure" in sent


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_on_failure_success(operator: Operator, ns: Kube, sidecar: str) -> None:
    # Every sidecar restart counts toward the Job's backoffLimit under OnFailure: leave room.
    ns.apply(
        policy(max_attempts=2),
        job(
            "j",
            pod_spec([primary(exit_code=0), SIDECARS[sidecar]], "OnFailure"),
            labels={"app": "matrix"},
            backoff_limit=6,
        ),
    )
    if SIDECAR_EXIT_ON_TERM[sidecar] == 0:
        assert ns.wait_job("j") == "Complete"
        [pod] = ns.wait_job_pods("j")
        assert pod["status"]["phase"] == "Succeeded"
        assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
        ns.wait_for_reasons("Pod", pod["metadata"]["name"], "SidecarStopped")
        return
    # 143 on a success-stop: the kubelet restarts the sidecar, Tandem stops it again, up to
    # maxAttempts, then reports the loop and leaves the pod alone.
    [pod] = ns.wait_job_pods("j")
    name = pod["metadata"]["name"]
    ns.wait_for_reasons("Pod", name, "SidecarExitMismatch", "SidecarStopLoop", timeout=120)
    pod = ns.get("pod", name)
    assert pod["status"]["phase"] == "Running"
    assert exit_code(pod, "main") == 0
    proxy = container_state(pod, "proxy")
    assert proxy["restartCount"] >= 2
    assert proxy["lastState"]["terminated"]["exitCode"] == 143
    assert len(_events(ns, name)["SidecarStopSent"]) == 2
    assert ns.get("job", "j")["status"].get("active") == 1


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_on_failure_failure_restarts_together(operator: Operator, ns: Kube, sidecar: str) -> None:
    ns.apply(
        policy(),
        job(
            "j",
            pod_spec([primary(exit_code=3), SIDECARS[sidecar]], "OnFailure"),
            labels={"app": "matrix"},
            backoff_limit=3,
        ),
    )
    [pod] = ns.wait_job_pods("j")
    name = pod["metadata"]["name"]
    expected = SIDECAR_EXIT_ON_FAILURE_STOP[sidecar]
    if expected:
        # Non-zero: the kubelet restarts the sidecar in tandem with the failed primary. Its last
        # run is read once the kubelet reports it (CI once saw restartCount 1 with lastState {}).
        pod = ns.wait_pod(
            name,
            "sidecar restarted with the primary",
            lambda p: (
                container_state(p, "proxy").get("restartCount", 0) >= 1
                and "terminated" in container_state(p, "proxy").get("lastState", {})
            ),
        )
        # main's failed run: its current state while it waits to restart, its last state once
        # it has (the sidecar may restart first: seen once in CI, main still terminated).
        main = container_state(pod, "main")
        ran = main["state"].get("terminated") or main["lastState"].get("terminated")
        assert ran is not None and ran["exitCode"] == 3, main
        assert container_state(pod, "proxy")["lastState"]["terminated"]["exitCode"] == expected
        ns.wait_for_reasons("Pod", name, "SidecarStopSent", "SidecarStopped")
    else:
        # Zero: the sidecar stays down while the primary restarts alone; Tandem says so.
        pod = ns.wait_pod(name, "sidecar exited", lambda p: exit_code(p, "proxy") is not None)
        assert exit_code(pod, "proxy") == 0
        assert container_state(pod, "proxy")["restartCount"] == 0
        ns.wait_for_reasons("Pod", name, "SidecarStopSent", "SidecarExitMismatch")
        [mismatch] = _events(ns, name)["SidecarExitMismatch"]
        assert "exited 0 although the primaries failed" in mismatch
    assert "outcome failure" in _events(ns, name)["SidecarStopSent"][0]
    assert ns.wait_job("j", timeout=150) == "Failed"


# Finish by phase. Tandem sends a graceful stop only where it knows one: haproxy, recognised by its
# image, gets USR1 (0); the shell sidecars get nothing from Tandem, and the kubelet's TERM after
# the finish gives what they exit on TERM.
PHASE_SIDECAR_EXIT = {"exits0": 0, "exits143": 143, "haproxy": 0}
GRACE = 5
"""The pods' terminationGracePeriodSeconds (manifests.pod_spec)."""
EXIT_CODE_PATH = {"PrimariesFinished", "SidecarStopSent", "SidecarStopped", "SidecarExitMismatch"}


@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
@pytest.mark.parametrize(
    ("restart_policy", "primary_exit"), [("Never", 0), ("Never", 3), ("OnFailure", 0)]
)
def test_phase_job_ends_with_the_primary(
    operator: Operator, ns: Kube, restart_policy: str, primary_exit: int, sidecar: str
) -> None:
    # backoffLimit 0: a second pod, or (under OnFailure) any container restart, fails the Job.
    ns.apply(
        policy(finish=None),
        job(
            "j",
            pod_spec([primary(exit_code=primary_exit), SIDECARS[sidecar]], restart_policy),
            labels={"app": "matrix"},
        ),
    )
    succeeded = primary_exit == 0
    assert ns.wait_job("j") == ("Complete" if succeeded else "Failed")
    [pod] = ns.wait_job_pods("j")
    name = pod["metadata"]["name"]
    pod = ns.wait_pod(
        name, "proxy terminated", lambda p: exit_code(p, "proxy") is not None, timeout=GRACE + 15
    )
    assert pod["status"]["phase"] == ("Succeeded" if succeeded else "Failed")
    assert exit_code(pod, "main") == primary_exit
    assert exit_code(pod, "proxy") == PHASE_SIDECAR_EXIT[sidecar], container_state(pod, "proxy")
    assert container_state(pod, "proxy")["restartCount"] == 0
    finished = condition(pod, "tandem.dev/Finished")
    assert finished is not None and finished["status"] == "True", pod["status"]
    assert finished["reason"] == ("PrimariesSucceeded" if succeeded else "PrimariesFailed")
    ns.wait_for_reasons("Pod", name, "PodFinished")
    ns.wait_for_reasons("Job", "j", "PodFinished")
    events = _events(ns, name)
    assert len(events["PodFinished"]) == 1, events
    assert not EXIT_CODE_PATH & set(events), events
    [on_job] = [e["message"] for e in ns.events("Job", "j") if e["reason"] == "PodFinished"]
    assert on_job.startswith(f"pod {name}: "), on_job
    assert not EXIT_CODE_PATH & set(ns.reasons("Job", "j"))
