"""Tandem acts only on Job pods (issue 25, least privilege): a batch/v1 Job controller
ownerReference, restartPolicy Never or OnFailure, in a watched namespace. A forged
`batch.kubernetes.io/job-name` label, a forged ownerReference, a ReplicaSet's pod or a bare pod
gets no exec, no helper, no phase write and no sweep; the real Job pod beside it still does."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.core import (
    AddHelper,
    CoreSettings,
    Decision,
    EventType,
    Finish,
    Monotonic,
    Owner,
    PodMemory,
    PolicySource,
    Reason,
    Report,
    Stop,
    WallTime,
    handle,
    managed_job_pod,
    parse_pod,
    resolve,
)
from tandem.core.explain import explain
from tandem.core.sweep import JobState, SweepAction, SweepRules, select
from tandem.runtime import Settings
from tandem.runtime.events import Publisher, job_reference
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.stopper import Stopper
from tandem.runtime.sweeper import Sweeper

from .fakes import Kept, MockExec, MockReads, MockStatus
from .pods import HELPER_IMAGE, PRIMARY, pod, running, status, terminated

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "name": "job-x",
    "uid": "job-uid",
    "controller": True,
    "blockOwnerDeletion": True,
}
REPLICA_SET = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "web-7d9f",
    "uid": "rs-uid",
    "controller": True,
}
NOT_CONTROLLER = {k: v for k, v in JOB.items() if k != "controller"}

FORGED: dict[str, tuple[list[dict[str, Any]], str]] = {
    # name: (ownerReferences, restartPolicy); every pod keeps the job-name label of pods.pod.
    "bare pod, label only": ([], "Never"),
    "bare pod, label only, OnFailure": ([], "OnFailure"),
    "ReplicaSet's pod": ([REPLICA_SET], "Always"),
    "ReplicaSet's pod with restartPolicy Never": ([REPLICA_SET], "Never"),
    "Job owner, restartPolicy Always": ([JOB], "Always"),
    "Job of another apiVersion": ([{**JOB, "apiVersion": "batch.example.com/v1"}], "Never"),
    "Job of batch/v1beta1": ([{**JOB, "apiVersion": "batch/v1beta1"}], "Never"),
    "Job owner with controller: false": ([{**JOB, "controller": False}], "Never"),
    "Job owner without controller": ([NOT_CONTROLLER], "Never"),
    "Job owner with controller: 'true' (a string)": ([{**JOB, "controller": "true"}], "Never"),
    "CronJob controller": ([{**JOB, "kind": "CronJob"}], "Never"),
    "Job owner beside a ReplicaSet controller": ([NOT_CONTROLLER, REPLICA_SET], "Never"),
    "Job controller without a uid": ([{**JOB, "uid": ""}], "Never"),
}

CID = "containerd://" + "a" * 64
_ALL = PolicySource("all", {"selector": {}, "primaryContainers": ["main"]})


def _ended(
    owners: list[dict[str, Any]] | None = None,
    restart_policy: str = "Never",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod whose primary `main` exited 0 while its sidecar `proxy` runs on. Its ownerReferences
    are OWNERS (default: its Job's, as pods.pod makes them)."""
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "m1")), status("proxy", running(CID))],
        annotations=PRIMARY if annotations is None else annotations,
        labels=labels,
        restart_policy=restart_policy,
    )
    if owners is not None:
        body["metadata"]["ownerReferences"] = copy.deepcopy(owners)
    return body


# Each way Tandem acts on a pod, and the action it takes there for a real Job pod.
MODES: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "exec stop": (Stop, {"kubelet_keeps_phase": False}),
    "phase write": (Finish, {"kubelet_keeps_phase": True}),
    "helper": (
        AddHelper,
        {
            "kubelet_keeps_phase": False,
            "helper_image": HELPER_IMAGE,
            # The first exec found no shell in proxy: the next decision adds the helper.
            "memory": PodMemory(no_shell=frozenset({"proxy"})),
        },
    ),
}
ACTING = (Stop, Finish, AddHelper)


def _handle(
    body: dict[str, Any],
    candidates: tuple[PolicySource, ...] = (),
    memory: PodMemory | None = None,
    **settings: Any,
) -> Decision:
    return handle(
        parse_pod(body),
        candidates,
        memory or PodMemory(),
        Monotonic(100.0),
        CoreSettings(**settings),
    )


def _acting(decision: Decision) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, ACTING)]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("forged", list(FORGED))
def test_a_pod_that_is_not_a_jobs_gets_no_exec_no_helper_and_no_phase(
    forged: str, mode: str
) -> None:
    owners, restart_policy = FORGED[forged]
    expected, options = MODES[mode]
    options = dict(options)
    memory = options.pop("memory", None)
    # The positive control: the same pod, as its Job made it, gets the action.
    for real_policy in ("Never", "OnFailure"):
        real = _handle(_ended(restart_policy=real_policy), memory=memory, **options)
        assert [type(a) for a in _acting(real)] == [expected], (real_policy, real.actions)
    decision = _handle(_ended(owners, restart_policy), memory=memory, **options)
    assert _acting(decision) == [], decision.actions
    assert not decision.sweepable and not decision.managed
    assert managed_job_pod(parse_pod(_ended(owners, restart_policy)))


@pytest.mark.parametrize("forged", list(FORGED))
def test_a_policy_selecting_a_forged_pod_gets_no_action_and_posts_nothing(forged: str) -> None:
    """A SidecarPolicy selects by labels, which the pod's author sets: it does not make a pod a
    Job's. No Warning either: the pod did not ask for Tandem."""
    owners, restart_policy = FORGED[forged]
    policy = PolicySource(
        "p", {"selector": {"matchLabels": {"app": "x"}}, "primaryContainers": ["main"]}
    )
    labels = {"app": "x"}
    real = _handle(_ended(annotations={}, labels=labels), (policy,))
    assert [type(a) for a in _acting(real)] == [Stop]
    decision = _handle(_ended(owners, restart_policy, annotations={}, labels=labels), (policy,))
    assert decision.actions == () and decision.memory == PodMemory()


def test_an_annotated_replicaset_pod_gets_one_warning_that_says_why() -> None:
    body = _ended([REPLICA_SET], "Always")
    first = _handle(body)
    [warning] = first.actions
    assert isinstance(warning, Report)
    assert (warning.type, warning.reason) == (EventType.WARNING, Reason.NOT_A_JOB_POD)
    assert "ReplicaSet web-7d9f (apps/v1), not a batch/v1 Job" in warning.message
    assert not warning.on_job and warning.tally is None
    # Once per pod, not at every event: the kubelet restarts the container, events keep coming.
    again = _handle(body, memory=first.memory)
    assert again.actions == () and again.memory == first.memory
    # The same pod with restartPolicy Always but a Job owner says that instead.
    [always] = _handle(_ended([JOB], "Always")).actions
    assert isinstance(always, Report) and "restartPolicy is Always" in always.message


def test_a_pod_orphaned_after_tandem_acted_is_told_once_and_left_alone() -> None:
    """Its Job deleted with --cascade=orphan: the garbage collector drops the ownerReference.
    Tandem had stopped its sidecar; it stops no more, and says so once (a Normal Event: the
    pod's owner chose this)."""
    acted = _handle(_ended(annotations={}), (_ALL,))
    assert [type(a) for a in _acting(acted)] == [Stop]
    orphaned = _ended([], annotations={})
    [told] = _handle(orphaned, (_ALL,), memory=acted.memory).actions
    assert isinstance(told, Report) and told.type is EventType.NORMAL
    assert told.reason is Reason.NOT_A_JOB_POD and "no Job controls it" in told.message
    later = _handle(
        orphaned, (_ALL,), memory=_handle(orphaned, (_ALL,), memory=acted.memory).memory
    )
    assert later.actions == ()


def test_a_pod_merely_labelled_gets_no_warning() -> None:
    for owners, restart_policy in FORGED.values():
        assert _handle(_ended(owners, restart_policy, annotations={})).actions == ()


def test_an_invalid_annotation_on_a_forged_pod_is_not_reported_either() -> None:
    body = _ended([REPLICA_SET], "Always", annotations={"tandem.dev/primary": ""})
    [warning] = _handle(body).actions  # the gate's Warning, not InvalidAnnotation
    assert isinstance(warning, Report) and warning.reason is Reason.NOT_A_JOB_POD


def test_a_pod_outside_the_watched_namespaces_gets_nothing_at_all() -> None:
    body = _ended()  # namespace "ns", a real Job pod
    watched = _handle(body, watched=("ns", "other"))
    assert [type(a) for a in _acting(watched)] == [Stop]
    outside = _handle(body, watched=("other",))
    assert outside.actions == () and outside.memory == PodMemory()  # no Warning: not ours
    assert managed_job_pod(parse_pod(body), ("other",)).startswith("its namespace ns is not")
    assert managed_job_pod(parse_pod(body), ()) == ""  # empty: the whole cluster


def test_the_view_carries_the_controller_and_never_trusts_the_label() -> None:
    view = parse_pod(_ended())
    assert view.controller == Owner("Job", "batch/v1", "job-x", "job-uid")
    assert (view.job_name, view.job_uid) == ("job-x", "job-uid")
    forged = parse_pod(_ended([], labels={"batch.kubernetes.io/job-name": "payroll"}))
    assert forged.controller is None and forged.job is None
    assert forged.job_name is None and forged.job_uid is None
    assert job_reference(forged) is None  # no Event lands on a Job the label names
    replica = parse_pod(_ended([REPLICA_SET]))
    assert replica.controller == Owner("ReplicaSet", "apps/v1", "web-7d9f", "rs-uid")
    assert replica.job is None
    assert parse_pod(_ended([NOT_CONTROLLER])).controller is None
    odd = _ended()
    odd["metadata"]["ownerReferences"] = "not a list"
    assert parse_pod(odd).controller is None
    odd["metadata"]["ownerReferences"] = [None, 3, {"controller": True}]
    assert parse_pod(odd).controller == Owner("", "", "", "")
    assert managed_job_pod(parse_pod(odd))


def test_explain_says_why_a_forged_pod_is_not_managed() -> None:
    found = explain(parse_pod(_ended([REPLICA_SET], "Always")), [], [])
    assert not found.managed and "ReplicaSet web-7d9f" in found.why_managed
    assert found.status == "not managed: Tandem acts only on pods that a Job creates"
    assert explain(parse_pod(_ended()), [], []).managed


@pytest.mark.parametrize("forged", list(FORGED))
@pytest.mark.parametrize("action", list(SweepAction))
def test_the_sweep_never_touches_a_forged_pod(forged: str, action: SweepAction) -> None:
    owners, restart_policy = FORGED[forged]
    rules = SweepRules(
        action=action, stuck_after=0.0, deletion_enabled=True, allow_deleting_succeeded=True
    )
    jobs = {"job-uid": JobState("job-uid", "Complete")}  # orphaned, were it the Job's
    policy = resolve({}, PRIMARY, ()).policy
    assert policy is not None
    [real] = select([(parse_pod(_ended()), policy)], jobs, WallTime(1e10), rules)
    assert real.action is action  # the positive control
    forged_view = parse_pod(_ended(owners, restart_policy))
    assert select([(forged_view, policy)], jobs, WallTime(1e10), rules) == []
    assert select([(forged_view, policy)], {}, WallTime(1e10), rules) == []


# --- Any ownerReferences, any restartPolicy: acts exactly on a Job's pod --------------------

owner_refs = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["batch/v1", "apps/v1", "batch/v1beta1", "v1", ""]),
        "kind": st.sampled_from(["Job", "ReplicaSet", "StatefulSet", "CronJob", "job", ""]),
        "name": st.sampled_from(["job-x", ""]),
        "uid": st.sampled_from(["job-uid", ""]),
    },
    optional={"controller": st.sampled_from([True, False, None, "true", 1])},
)


def _is_a_jobs(owners: list[dict[str, Any]], restart_policy: str) -> bool:
    """Independently of the core: the first ownerReference with controller: true is a batch/v1
    Job with a name and a uid, and the restart policy is one a Job allows."""
    controllers = [o for o in owners if o.get("controller") is True]
    return (
        bool(controllers)
        and controllers[0]["kind"] == "Job"
        and controllers[0]["apiVersion"] == "batch/v1"
        and bool(controllers[0]["name"] and controllers[0]["uid"])
        and restart_policy in ("Never", "OnFailure")
    )


@settings(max_examples=300, deadline=None)
@given(
    owners=st.lists(owner_refs, max_size=3),
    restart_policy=st.sampled_from(["Never", "OnFailure", "Always", ""]),
    mode=st.sampled_from(list(MODES)),
    annotated=st.booleans(),
)
def test_tandem_acts_exactly_on_job_pods(
    owners: list[dict[str, Any]], restart_policy: str, mode: str, annotated: bool
) -> None:
    expected, options = MODES[mode]
    options = dict(options)
    memory = options.pop("memory", None)
    body = _ended(owners, restart_policy, annotations=PRIMARY if annotated else {})
    if not restart_policy:
        del body["spec"]["restartPolicy"]  # the API server defaults it to Always
    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    decision = _handle(body, () if annotated else (policy,), memory=memory, **options)
    if _is_a_jobs(owners, restart_policy):
        assert [type(a) for a in _acting(decision)] == [expected]
    else:
        assert _acting(decision) == [] and not decision.sweepable
        assert all(isinstance(a, Report) for a in decision.actions)
        assert len(decision.actions) == (1 if annotated else 0)


# --- Through the runtime: no exec, no status write, no delete ------------------------------


class Recording:
    """The executor, the status writer and the reads, recording what reached the API: every
    Job gone, so a forged pod would be an orphan."""

    def __init__(self) -> None:
        self.execs, self.writes, self.reads = MockExec(), MockStatus(), MockReads()

    @property
    def calls(self) -> list[tuple[str, str]]:
        return (
            [("exec", call.pod) for call in self.execs.calls]
            + [("phase", call.pod) for call in self.writes.calls]
            + [("delete", name) for name in self.reads.deleted]
        )

    def stopper(self) -> Stopper:
        return Stopper(self.execs, None, Settings(), status=self.writes)


class Quiet(Publisher):
    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[tuple[str, Reason]] = []

    def publish(self, view: Any, report: Report, policy_name: str | None = None) -> None:
        self.reasons.append((view.name, report.reason))


def _named(body: dict[str, Any], name: str, uid: str) -> dict[str, Any]:
    body["metadata"].update(name=name, uid=uid)
    return body


@pytest.mark.parametrize("keeps", [False, True], ids=["exec", "phase"])
def test_the_runtime_carries_out_nothing_on_a_forged_pod(keeps: bool) -> None:
    recording, publisher = Recording(), Quiet()
    reconciler = Reconciler(
        recording.stopper(),
        publisher,
        kubelets_keep_phase=keeps,
        watched=("ns",),
    )
    real = _named(_ended(), "real", "u-real")
    forged = {
        name: _named(_ended(owners, restart_policy), f"f{i}", f"u-f{i}")
        for i, (name, (owners, restart_policy)) in enumerate(FORGED.items())
    }
    elsewhere = _named(_ended(), "elsewhere", "u-else")
    elsewhere["metadata"]["namespace"] = "not-watched"

    async def scenario() -> None:
        for body in (real, *forged.values(), elsewhere):
            for _ in range(2):
                await reconciler.reconcile(body, (), Monotonic(time.monotonic()))
        await reconciler.close()

    asyncio.run(scenario())
    assert recording.calls == [("phase" if keeps else "exec", "real")]
    warned = {name for name, reason in publisher.reasons if reason is Reason.NOT_A_JOB_POD}
    assert warned == {f"f{i}" for i in range(len(FORGED))}  # each once: all are annotated
    assert len([r for r in publisher.reasons if r[1] is Reason.NOT_A_JOB_POD]) == len(FORGED)
    assert not [r for r in publisher.reasons if r[0] == "elsewhere"]
    assert [v.name for v in reconciler.sweepable()] == ["real"]  # the sweep sees no other


def test_the_sweep_deletes_no_forged_view_even_one_the_watch_has_just_changed() -> None:
    """The reconciler stores a pod's newest view before the core has decided on it: a sweep in
    between reads it. A Job deleted with --cascade=orphan drops the pod's ownerReference: that
    view must not be deleted as an orphan."""
    recording, publisher = Recording(), Quiet()
    views = [
        parse_pod(_named(_ended(owners, restart_policy), f"f{i}", f"u-f{i}"))
        for i, (owners, restart_policy) in enumerate(FORGED.values())
    ]
    reconciler = Kept(recording.stopper(), views, publisher=publisher)
    rules = SweepRules(
        action=SweepAction.DELETE,
        stuck_after=0.0,
        deletion_enabled=True,
        allow_deleting_succeeded=True,
    )
    sweeper = Sweeper(recording.reads, reconciler, rules)
    result = asyncio.run(sweeper.sweep_annotated(lambda _: ()))
    assert (result.swept, result.skipped) == (0, 0)
    assert recording.calls == [] and publisher.reasons == []
    reconciler.views = [parse_pod(_ended())]
    assert asyncio.run(sweeper.sweep_annotated(lambda _: ())).swept == 1
    assert recording.calls == [("delete", "job-x-abcde")]
