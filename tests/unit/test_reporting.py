"""The runtime's reporting path: every Event the core writes is posted, counted in
`tandem_events_total` and, when it carries a tally, added to its SidecarPolicy's counters. The
sweeper's Events go through the same path as the reconciler's."""

from __future__ import annotations

import asyncio
import copy
import gc
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import kopf
import pytest
from prometheus_client import REGISTRY

from tandem.adapters import ExecResult
from tandem.core import Monotonic, PodMemory, PolicySource, parse_pod
from tandem.core.sweep import SweepAction, SweepRules
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.sweeper import Sweeper, SweepResult

from .fakes import ExecCall, Kept, MockExec, MockReads, MockStatus, gated, job, stopper
from .pods import pod, running, status, terminated

POSTED: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _no_kopf_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf.event needs the queue that only kopf's handlers have; record instead."""
    POSTED.clear()

    def event(body: Any, *, type: str, reason: str, message: str) -> None:
        POSTED.append({"body": body, "type": type, "reason": reason, "message": message})

    monkeypatch.setattr(kopf, "event", event)


def _events_total(reason: str) -> float:
    value = REGISTRY.get_sample_value("tandem_events_total", {"reason": reason, "type": "Normal"})
    return value or 0.0


def _ended(namespace: str, uid: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, f"m-{uid}")), status("proxy", running(f"p-{uid}"))],
        labels=dict(labels or {}),
        uid=uid,
    )
    body["metadata"]["namespace"] = namespace
    return body


def test_policies_with_one_name_in_two_namespaces_keep_their_own_counters() -> None:
    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    reconciler = Reconciler(stopper(), kubelets_keep_phase=False)

    async def two_pods() -> None:
        for namespace, uid in (("a", "u1"), ("a", "u2"), ("b", "u3")):
            await reconciler.reconcile(_ended(namespace, uid), [policy], Monotonic(0.0))
        await reconciler.close()

    asyncio.run(two_pods())
    assert dict(reconciler.take_tally(("b", "p"))) == {"handled": 1, "succeeded": 1}
    assert dict(reconciler.take_tally(("a", "p"))) == {"handled": 2, "succeeded": 2}
    assert not any(reconciler.take_tally(("a", "p")).values())  # taken: the next write adds 0


def test_the_sweepers_events_are_counted() -> None:
    body = _ended("ns", "orphan")
    body["metadata"]["annotations"] = {"tandem.dev/primary": "main"}
    reconciler = Kept(stopper(), [parse_pod(body)])
    sweeper = Sweeper(MockReads(), reconciler, SweepRules(action=SweepAction.REPORT))
    before = _events_total("PodSwept")
    result = asyncio.run(sweeper.sweep_annotated(lambda _: ()))
    assert result.swept == 0  # a dry run
    assert [e["reason"] for e in POSTED] == ["PodSwept", "PodSwept"]  # the pod, and its Job
    assert _events_total("PodSwept") == before + 1


def test_the_reconciler_keeps_one_pending_recheck_per_pod_the_earliest() -> None:
    reconciler = Reconciler(stopper(), kubelets_keep_phase=False)

    async def three() -> list[Monotonic]:
        for after in (30.0, 40.0, 10.0):
            reconciler._schedule_recheck("u1", after)
        pending = [due for due, _ in reconciler._rechecks.values()]
        await reconciler.close()
        return pending

    [due] = asyncio.run(three())
    assert due - time.monotonic() < 10.5


class _Body(dict[str, Any]):
    """A pod body that a weak reference can watch."""


def test_the_pod_handler_returns_once_decided_and_nothing_keeps_the_body() -> None:
    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    release = threading.Event()  # the exec waits until the test lets it end
    executor = MockExec(gated(release))
    reconciler = Reconciler(stopper(executor), kubelets_keep_phase=False)
    body = _Body(_ended("a", "u1"))
    kept = weakref.ref(body)

    async def scenario(pod: Mapping[str, Any]) -> list[str]:
        await reconciler.react(pod, [policy], Monotonic(time.monotonic()))
        await asyncio.sleep(0.2)  # the stop has begun, and waits in its exec
        stopping = [call.container for call in executor.calls]
        release.set()
        await reconciler.settle()
        return stopping

    stopping = asyncio.run(scenario(body))
    assert stopping == ["proxy"]
    assert [(e["body"]["kind"], e["reason"]) for e in POSTED] == [
        ("Pod", "PrimariesFinished"),
        ("Job", "PrimariesFinished"),
        ("Pod", "SidecarStopSent"),
    ]
    assert reconciler.remembered == 1  # the pod's view, for the re-check
    del body
    gc.collect()
    assert kept() is None


def test_a_failure_while_carrying_out_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: ExecCall) -> ExecResult:
        raise RuntimeError("the adapter broke")

    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    reconciler = Reconciler(stopper(MockExec(broken)), kubelets_keep_phase=False)

    async def scenario() -> None:
        await reconciler.react(_ended("a", "u1"), [policy], Monotonic(time.monotonic()))
        await reconciler.settle()

    asyncio.run(scenario())
    assert "the adapter broke" in caplog.text


def _finishing_by_phase(
    status_writer: MockStatus,
) -> tuple[Reconciler, PolicySource, dict[str, Any]]:
    """A reconciler writing through STATUS_WRITER, and a pod whose primary has just succeeded."""
    reconciler = Reconciler(stopper(status=status_writer))
    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    ended = _ended("a", "u1")
    return reconciler, policy, ended


def test_an_event_that_comes_while_the_pods_phase_is_written_is_decided_after_the_write() -> None:
    """The write's own watch event can come before the write's answer: decided at once, it would
    find the write unrecorded and tell PodFinished a second time ("ended by itself")."""
    release = threading.Event()  # the pods/status write waits until the test lets it land
    status_writer = MockStatus(gated(release))
    reconciler, policy, ended = _finishing_by_phase(status_writer)
    written = copy.deepcopy(ended)
    written["status"]["phase"] = "Succeeded"
    written["status"]["conditions"] = [{"type": "tandem.dev/Finished", "status": "True"}]

    async def scenario() -> None:
        await reconciler.react(ended, [policy], Monotonic(time.monotonic()))
        await asyncio.sleep(0.2)  # the write is under way
        await reconciler.react(written, [policy], Monotonic(time.monotonic()))
        release.set()
        await reconciler.settle()

    asyncio.run(scenario())
    assert status_writer.phases == ["Succeeded"]
    assert [(e["body"]["kind"], e["reason"]) for e in POSTED] == [
        ("Pod", "PodFinished"),
        ("Job", "PodFinished"),
    ]


def test_a_pod_deleted_while_its_phase_is_written_is_forgotten_after_the_write() -> None:
    release = threading.Event()  # the pods/status write waits until the test lets it land
    status_writer = MockStatus(gated(release))
    reconciler, policy, ended = _finishing_by_phase(status_writer)
    updated = copy.deepcopy(ended)  # another status write, before the phase shows
    updated["metadata"]["resourceVersion"] = "43"

    kept: list[tuple[int, list[str]]] = []

    async def scenario() -> None:
        await reconciler.react(ended, [policy], Monotonic(time.monotonic()))
        await asyncio.sleep(0.2)  # the write is under way
        await reconciler.react(updated, [policy], Monotonic(time.monotonic()))
        reconciler.gone("u1")
        # The control: until the write is carried out, the pod is remembered.
        kept.append((reconciler.remembered, list(reconciler.memories())))
        release.set()
        await reconciler.settle()

    asyncio.run(scenario())
    assert status_writer.phases == ["Succeeded"]
    assert kept == [(1, ["u1"])]
    assert reconciler.remembered == 0 and dict(reconciler.memories()) == {}


def test_a_pod_whose_phase_tandem_just_wrote_is_not_swept_before_its_event_comes() -> None:
    """Tandem has just written the pod's phase, and its Job is Complete. A sweep that runs before
    the write's own watch event must not take the pod for an orphan and Terminate it from the
    older view."""
    status_writer = MockStatus()
    reconciler = Reconciler(stopper(status=status_writer))
    sweeper = Sweeper(MockReads([job("job-uid", "Complete")]), reconciler, SweepRules())
    spec = {"selector": {}, "primaryContainers": ["main"]}
    ended = _ended("a", "u1")

    async def scenario() -> SweepResult:
        await reconciler.react(ended, [PolicySource("p", spec)], Monotonic(time.monotonic()))
        await reconciler.settle()
        return await sweeper.sweep_policy("a", "p", spec)

    result = asyncio.run(scenario())
    assert status_writer.phases == ["Succeeded"]
    assert (result.swept, result.skipped) == (0, 0)
    assert "PodSwept" not in [e["reason"] for e in POSTED]
    # The control: the same sweep of the same view, once Tandem's write is no longer recent
    # (stuckAfter 0), does take the pod for an orphan of its Complete Job and Terminates it.
    sweeper.defaults = SweepRules(stuck_after=0.0)
    again = asyncio.run(sweeper.sweep_policy("a", "p", spec))
    assert again.swept == 1 and "PodSwept" in [e["reason"] for e in POSTED]
    assert status_writer.phases == ["Succeeded"] * 2  # the Terminate ran the finish again


def test_the_sweeps_terminate_uses_the_newest_view_and_not_a_pod_that_has_ended() -> None:
    policy = PolicySource("p", {"selector": {}, "primaryContainers": ["main"]})
    stale = parse_pod(_ended("a", "u1"))
    succeeded = _ended("a", "u1")
    succeeded["status"]["phase"] = "Succeeded"

    # The control: a twin whose newest view still has its sidecar running is handled afresh
    # by the same call, its stop sent again.
    twin = _ended("a", "u2")
    executor = MockExec()
    reconciler = Reconciler(stopper(executor), kubelets_keep_phase=False)

    async def scenario() -> None:
        await reconciler.reconcile(succeeded, [policy], Monotonic(time.monotonic()))
        await reconciler.restart(stale, [policy], lambda memory: memory)
        await reconciler.reconcile(twin, [policy], Monotonic(time.monotonic()))
        await reconciler.restart(parse_pod(twin), [policy], lambda _: PodMemory())

    asyncio.run(scenario())
    assert [call.pod for call in executor.calls] == ["job-x-abcde"] * 2  # the twin's, twice
    assert [v.uid for v in reconciler.sweepable()] == ["u2"]
    assert {e["body"]["metadata"]["uid"] for e in POSTED if e["body"]["kind"] == "Pod"} == {"u2"}


def test_an_event_that_comes_while_a_rechecks_stop_is_in_flight_is_decided_after_it() -> None:
    """TERM is delivered; its grace period (1 s) ends, and the re-check sends the next step,
    KILL, whose exec hangs. An event that comes meanwhile must wait for it: decided beside it,
    it would find KILL's grace period over and call the sidecar unstoppable while KILL is still
    on its way."""
    release = threading.Event()
    calls: list[str] = []

    def answer(call: ExecCall) -> ExecResult:
        calls.append(call.argv[-1])
        if "KILL" in call.argv[-1]:
            release.wait(10)  # the KILL's exec hangs until the test lets it answer
        return ExecResult(0)

    reconciler = Reconciler(stopper(MockExec(answer)))
    spec = {"selector": {}, "primaryContainers": ["main"], "gracePeriodSeconds": 1}
    policy = PolicySource("p", {**spec, "finish": "ExitCodes"})
    ended = pod(
        ["main", "proxy"],
        [status("main", terminated(3, "m1")), status("proxy", running("p1"))],
        share_pid=True,
    )
    later = copy.deepcopy(ended)
    later["metadata"]["resourceVersion"] = "2"
    seen: list[list[str]] = []

    async def scenario() -> None:
        await reconciler.react(ended, [policy], Monotonic(time.monotonic()))
        deadline = time.monotonic() + 5
        while not any("KILL" in c for c in calls) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the re-check, after TERM's grace period, sends KILL
        await asyncio.sleep(1.5)  # KILL's grace period would be over, were it delivered
        await reconciler.react(later, [policy], Monotonic(time.monotonic()))
        await asyncio.sleep(0.2)
        seen.append([e["reason"] for e in POSTED])
        release.set()
        await reconciler.settle()

    asyncio.run(scenario())
    assert len(calls) == 2 and "TERM" in calls[0] and "KILL" in calls[1], calls
    assert "SidecarUnstoppable" not in seen[0], seen[0]
    assert "SidecarStopSent" in seen[0]  # the TERM's: the reporting path was live
