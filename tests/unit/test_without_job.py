"""Pods that no Job owns: a double opt-in (the operator's --pods-without-job and a SidecarPolicy's
podsWithoutJob), never an annotation alone, never a pod a ReplicaSet-like controller replaces or
whose kubelet restarts its containers; the same finish; Events on the pod and its controller."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.core import (
    CoreSettings,
    Finish,
    Monotonic,
    PodMemory,
    PolicyError,
    Reason,
    Report,
    handle,
    parse_pod,
    parse_spec,
)
from tandem.core.policy.policy import PolicySource
from tandem.runtime.events import owner_reference

from .pods import PRIMARY, pod, running, status, terminated

TASK_RUN = {"apiVersion": "tekton.dev/v1", "kind": "TaskRun"}


def ended(owner: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """main (Airflow's `base`, say) ended 0 beside a running sidecar, owned by OWNER (None: a
    bare pod), without the job-name label."""
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("c2"))],
        labels={"app": "etl"},
        **extra,
    )
    body["metadata"]["labels"].pop("batch.kubernetes.io/job-name")
    body["metadata"]["ownerReferences"] = (
        []
        if owner is None
        else [{**owner, "name": "run-1", "uid": "owner-uid", "controller": True}]
    )
    return body


def policy(**without_job: Any) -> PolicySource:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "etl"}},
        "primaryContainers": ["main"],
    }
    if without_job:
        spec["podsWithoutJob"] = without_job
    return PolicySource("etl", spec)


def run(body: dict[str, Any], candidates: tuple[PolicySource, ...], allowed: bool = True) -> Any:
    return handle(
        parse_pod(body),
        candidates,
        PodMemory(),
        Monotonic(100.0),
        CoreSettings(kubelet_keeps_phase=True, pods_without_job=allowed),
    )


def of(decision: Any, kind: type) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, kind)]


def test_a_bare_pod_that_the_policy_opts_in_is_finished() -> None:
    [finish] = of(run(ended(None), (policy(bare=True),)), Finish)
    assert finish.phase == "Succeeded"


def test_a_pod_of_a_named_controller_is_finished() -> None:
    [finish] = of(run(ended(TASK_RUN), (policy(controllers=[TASK_RUN]),)), Finish)
    assert finish.phase == "Succeeded"


@pytest.mark.parametrize(
    ("body", "candidates", "allowed", "why"),
    [
        (ended(None), (policy(bare=True),), False, "no Job controls it"),
        (ended(None), (policy(),), True, "no SidecarPolicy in its namespace opts in"),
        (ended(None), (policy(controllers=[TASK_RUN]),), True, "does not opt bare pods in"),
        (ended(TASK_RUN), (policy(bare=True),), True, "does not name in podsWithoutJob"),
        (
            ended({"apiVersion": "apps/v1", "kind": "ReplicaSet"}),
            (policy(bare=True),),
            True,
            "replaces the pods it loses",
        ),
        (
            ended(None, restart_policy="Always"),
            (policy(bare=True),),
            True,
            "restartPolicy is Always",
        ),
    ],
    ids=["operator off", "policy silent", "not bare", "other kind", "replicaset", "always"],
)
def test_anything_else_is_left_alone(
    body: dict[str, Any], candidates: tuple[PolicySource, ...], allowed: bool, why: str
) -> None:
    body["metadata"]["annotations"] = PRIMARY  # so that the pod is told why
    decision = run(body, candidates, allowed)
    assert of(decision, Finish) == []
    [report] = of(decision, Report)
    assert report.reason is Reason.NOT_A_JOB_POD and why in report.message, report.message


def test_an_annotation_alone_never_opts_a_pod_in() -> None:
    body = ended(None, annotations=PRIMARY)
    decision = run(body, ())
    assert of(decision, Finish) == []
    assert "an annotation alone never does" in of(decision, Report)[0].message
    # The control: the same pod, with a policy that opts bare pods in, is finished.
    assert of(run(body, (policy(bare=True),)), Finish)


def test_outside_the_watched_namespaces_nothing_happens() -> None:
    decision = handle(
        parse_pod(ended(None)),
        (policy(bare=True),),
        PodMemory(),
        Monotonic(100.0),
        CoreSettings(kubelet_keeps_phase=True, pods_without_job=True, watched=("other",)),
    )
    assert decision.actions == ()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"controllers": [{"apiVersion": "apps/v1", "kind": "StatefulSet"}]}, "replaces the pods"),
        ({"controllers": [{"kind": "TaskRun"}]}, "give apiVersion and kind"),
        ({"bare": "yes"}, "give bare (true or false)"),
        ([], "give bare"),
    ],
)
def test_a_bad_pods_without_job_is_refused_naming_the_field(raw: Any, says: str) -> None:
    with pytest.raises(PolicyError, match=r"spec\.podsWithoutJob") as error:
        parse_spec("p", {"primaryContainers": ["main"], "podsWithoutJob": raw})
    assert says in str(error.value)


def test_events_go_on_the_pod_and_its_controller() -> None:
    view = parse_pod(ended(TASK_RUN))
    assert owner_reference(view) == {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": "run-1", "namespace": "ns", "uid": "owner-uid"},
    }
    assert owner_reference(parse_pod(ended(None))) is None
