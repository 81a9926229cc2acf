"""Tandem's helper: who it runs as (issue 16: never root by default), a signal the kernel
refuses to it, and a `tandem-helper` that Tandem did not add, which it never execs into."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.adapters import helper_spec
from tandem.core import (
    HELPER_NAME,
    AddHelper,
    CoreSettings,
    Decision,
    Delivery,
    ExecResult,
    Monotonic,
    PodMemory,
    Reason,
    Report,
    RunAs,
    Stop,
    StopPath,
    decide,
    helper_user,
    learn,
    parse_pod,
    parse_spec,
)

from .pods import HELPER_IMAGE, helper_container, pod, running, status, terminated

CID = "containerd://" + "a" * 64
POLICY = parse_spec("p", {"primaryContainers": ["main"], "gracePeriodSeconds": 10})
# The first exec found no shell in proxy: the next decision goes through the helper.
NO_SHELL = PodMemory(no_shell=frozenset({"proxy"}))
EPERM = ExecResult(1, stderr="kill: can't kill pid 1: Operation not permitted")


def _pod(
    sidecar_context: dict[str, Any] | None = None,
    pod_context: dict[str, Any] | None = None,
    helper: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = pod(
        ["main", "proxy"], [status("main", terminated(0, "m1")), status("proxy", running(CID))]
    )
    if sidecar_context is not None:
        body["spec"]["containers"][1]["securityContext"] = sidecar_context
    if pod_context is not None:
        body["spec"]["securityContext"] = pod_context
    if helper is not None:
        body["spec"]["ephemeralContainers"] = [helper]
        body["status"]["ephemeralContainerStatuses"] = [status(HELPER_NAME, running("h1"))]
    return body


def _decide(body: dict[str, Any], memory: PodMemory = NO_SHELL, now: float = 1.0) -> Decision:
    return decide(
        parse_pod(body), POLICY, memory, Monotonic(now), CoreSettings(helper_image=HELPER_IMAGE)
    )


def _of(decision: Decision, kind: type[Any]) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, kind)]


# --- Who the helper runs as ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sidecar", "pod_level", "expected"),
    [
        # The container's own user and group win over the pod's ...
        (
            {"runAsUser": 1000, "runAsGroup": 2000},
            {"runAsUser": 3000, "runAsGroup": 4000},
            RunAs(1000, 2000, True),
        ),
        # ... field by field, as the kubelet merges them ...
        ({"runAsUser": 1000}, {"runAsUser": 3000, "runAsGroup": 4000}, RunAs(1000, 4000, True)),
        # ... then the pod's ...
        (None, {"runAsUser": 3000, "runAsGroup": 4000}, RunAs(3000, 4000, True)),
        # ... else 65532, never the image's user (root in busybox).
        (None, None, RunAs(65532, 65532, True)),
        ({"runAsNonRoot": True}, None, RunAs(65532, 65532, True)),
        # Only an explicit 0 makes it root, and then it says so (runAsNonRoot false).
        ({"runAsUser": 0}, None, RunAs(0, 65532, False)),
        (None, {"runAsUser": 0, "runAsGroup": 0}, RunAs(0, 0, False)),
        # Values that are not IDs are no explicit choice: never root from junk.
        ({"runAsUser": "0", "runAsGroup": True}, None, RunAs(65532, 65532, True)),
        ({"runAsUser": -1}, {"runAsUser": None}, RunAs(65532, 65532, True)),
    ],
)
def test_the_helper_takes_the_sidecars_user_else_a_non_root_one(
    sidecar: dict[str, Any] | None, pod_level: dict[str, Any] | None, expected: RunAs
) -> None:
    [add] = _of(_decide(_pod(sidecar, pod_level)), AddHelper)
    assert add == AddHelper("proxy", expected)


def test_the_helper_spec_passes_pod_security_restricted() -> None:
    spec = helper_spec("proxy", HELPER_IMAGE, helper_user(RunAs()))
    assert spec["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "runAsNonRoot": True,
    }
    # What the core recognises as Tandem's own helper is exactly what the adapter adds.
    assert {k: spec[k] for k in ("name", "image", "command", "targetContainerName")} == (
        helper_container()
    )
    root = helper_spec("proxy", HELPER_IMAGE, helper_user(RunAs(user=0, group=0)))
    context = root["securityContext"]
    assert (context["runAsUser"], context["runAsNonRoot"]) == (0, False)
    assert context["capabilities"] == {"drop": ["ALL"]} and not context["allowPrivilegeEscalation"]


# --- A signal the kernel refuses ----------------------------------------------------------


def _helper_stop(helper_context: dict[str, Any] | None = None) -> Stop:
    helper = helper_container()
    if helper_context is not None:
        helper["securityContext"] = helper_context
    decision = _decide(_pod(helper=helper), PodMemory(no_shell=frozenset({"proxy"})))
    [stop] = [a for a in decision.actions if isinstance(a, Stop)]
    assert (stop.container, stop.path) == (HELPER_NAME, StopPath.HELPER)
    return stop


def test_a_refused_signal_from_the_helper_names_its_user_and_the_fix() -> None:
    stop = _helper_stop({"runAsUser": 65532, "runAsNonRoot": True})
    assert stop.user == 65532
    learned = learn(PodMemory(), stop, EPERM, Monotonic(1.5))
    report = learned.report
    assert learned.delivery is Delivery.FAILED and report is not None
    assert report.reason is Reason.SIDECAR_STOP_FAILED and report.type == "Warning"
    assert "helper runs as user 65532" in report.message
    assert "proxy's process belongs to another user" in report.message
    assert "Fix: set runAsUser" in report.message and "proxy container" in report.message
    assert "Operation not permitted" not in report.message  # the container's words stay out


def test_a_refused_signal_is_not_tried_again() -> None:
    stop = _helper_stop({"runAsUser": 65532})
    memory = learn(
        _decide(_pod(helper=helper_container())).memory, stop, EPERM, Monotonic(1.5)
    ).memory
    for later in (12.0, 30.0, 60.0):
        assert _of(_decide(_pod(helper=helper_container()), memory, later), Stop) == []


def test_a_helper_without_a_known_user_is_still_explained() -> None:
    report = learn(PodMemory(), _helper_stop(), EPERM, Monotonic(1.5)).report
    assert report is not None and "helper runs as its image's user" in report.message


def test_the_same_words_from_the_sidecar_itself_are_no_helper_matter() -> None:
    stop = _of(_decide(_pod(), PodMemory()), Stop)[0]
    assert stop.container == "proxy" and stop.user is None
    report = learn(PodMemory(), stop, EPERM, Monotonic(1.5)).report
    assert report is not None and "helper" not in report.message
    assert "exit code 1" in report.message


# --- A tandem-helper that Tandem did not add ----------------------------------------------


FOREIGN = {
    "image": (helper_container(image="registry.example/other:1"), "its image is"),
    "target": (helper_container(target="main"), "it targets main, not proxy"),
    "command": (helper_container(command=["sh", "-c", "sleep 3600"]), "its command"),
}


@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_tandem_never_execs_into_a_helper_it_did_not_add(case: str) -> None:
    helper, cause = FOREIGN[case]
    decision = _decide(_pod(helper=helper))
    assert _of(decision, Stop) == [] and _of(decision, AddHelper) == []
    reports: list[Report] = _of(decision, Report)
    [refusal] = [r for r in reports if r.reason is Reason.SIDECAR_STOP_FAILED]
    assert refusal.type == "Warning" and refusal.on_job
    assert "tandem-helper was not added by Tandem for proxy" in refusal.message
    assert cause in refusal.message and "Fix: " in refusal.message
    # With no other way to reach proxy, the ladder ends, naming the cause.
    [unstoppable] = [r for r in reports if r.reason is Reason.SIDECAR_UNSTOPPABLE]
    assert "not Tandem's" in unstoppable.message
    # Said once; later events neither repeat it nor exec.
    later = _decide(_pod(helper=helper), decision.memory, 20.0)
    assert _of(later, Stop) == [] and _of(later, Report) == []


def test_a_helper_added_by_someone_else_while_tandem_added_its_own_is_refused() -> None:
    # Tandem asked for its helper; the pod now shows another image under the name (the other
    # patch came first, and Tandem's was refused).
    first = _decide(_pod())
    assert _of(first, AddHelper) and first.memory.helper_target == "proxy"
    foreign = helper_container(image="registry.example/other:1")
    decision = _decide(_pod(helper=foreign), first.memory, 2.0)
    assert _of(decision, Stop) == []
    assert Reason.SIDECAR_STOP_FAILED in [r.reason for r in _of(decision, Report)]


def test_tandems_own_helper_is_reused_after_a_restart() -> None:
    # No memory (the operator restarted), and the helper Tandem added is there: no second
    # patch, and the stop goes through it.
    decision = _decide(_pod(helper=helper_container()))
    assert _of(decision, AddHelper) == []
    [stop] = _of(decision, Stop)
    assert stop.container == HELPER_NAME and decision.memory.helper_target == "proxy"
