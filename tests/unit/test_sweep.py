"""The sweep's selection as a pure function of pods, Jobs and the time; the cap on actions shared
between namespaces, within a sweep and over sweeps."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tandem.core import (
    HELPER_NAME,
    Monotonic,
    Outcome,
    PodMemory,
    PodView,
    Policy,
    PolicySource,
    Reason,
    Report,
    SidecarRecord,
    WallTime,
    parse_pod,
    primaries_ended,
)
from tandem.core.finish.decision import MAX_RERUNS
from tandem.core.model.names import PRIMARY_ANNOTATION
from tandem.core.model.once import Told, once_key
from tandem.core.policy.policy import DEFAULT_STOP
from tandem.core.sweep import JobState, SweepAction, SweepRules, select
from tandem.runtime.events import Publisher
from tandem.runtime.sweeper import NamespaceBudget, Sweeper, rules_from

from .fakes import Kept, MockReads, stopper
from .pods import pod, running, status, terminated

ENDED_AT = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC).timestamp()
POLICY = Policy(source="t", primaries=("main",))
JOBS = {"job-uid": JobState("job-uid", None)}


def _body(name: str, code: int = 0, main_running: bool = False, namespace: str = "ns") -> Any:
    main = status("main", running("m") if main_running else terminated(code, "m"))
    body = pod(["main", "proxy"], [main, status("proxy", running("p"))], uid=f"{namespace}/{name}")
    body["metadata"].update(name=name, namespace=namespace)
    return body


def _stuck(name: str, code: int = 0, main_running: bool = False, namespace: str = "ns") -> Any:
    return parse_pod(_body(name, code, main_running, namespace))


def _select(views: list[Any], rules: SweepRules, jobs: Any = JOBS, after: float = 700) -> Any:
    return select([(v, POLICY) for v in views], jobs, WallTime(ENDED_AT + after), rules)


def test_stuck_after_the_threshold_only() -> None:
    rules = SweepRules(stuck_after=600)
    assert _select([_stuck("a")], rules, after=599) == []
    [found] = _select([_stuck("a")], rules, after=601)
    assert found.action is SweepAction.TERMINATE and found.why.startswith("stuck: ")


def test_a_running_primary_is_never_touched_however_old() -> None:
    assert _select([_stuck("a", main_running=True)], SweepRules(), after=10**7) == []
    assert _select([_stuck("a", main_running=True)], SweepRules(), jobs={}) == []


def test_orphans_whose_job_is_gone_or_finished() -> None:
    [gone] = _select([_stuck("a")], SweepRules(), jobs={}, after=1)
    assert "no longer exists" in gone.why
    [done] = _select(
        [_stuck("a")], SweepRules(), jobs={"job-uid": JobState("job-uid", "Failed")}, after=1
    )
    assert "already Failed" in done.why


def test_delete_refuses_to_rerun_succeeded_work() -> None:
    rules = SweepRules(action=SweepAction.DELETE, deletion_enabled=True)
    [found] = _select([_stuck("a", code=0)], rules)
    assert found.action is None and "run the work again" in found.skipped
    [failed] = _select([_stuck("a", code=3)], rules)
    assert failed.action is SweepAction.DELETE
    [orphan] = _select([_stuck("a", code=0)], rules, jobs={})
    assert orphan.action is SweepAction.DELETE
    allowed = SweepRules(
        action=SweepAction.DELETE, deletion_enabled=True, allow_deleting_succeeded=True
    )
    assert _select([_stuck("a")], allowed)[0].action is SweepAction.DELETE


def test_delete_needs_the_operator_switch() -> None:
    [found] = _select([_stuck("a", code=3)], SweepRules(action=SweepAction.DELETE))
    assert found.action is None and "--sweep-allow-delete" in found.skipped


def test_the_cap_bounds_actions_per_sweep_not_reports() -> None:
    views = [_stuck(f"p{i}") for i in range(5)]
    found = _select(views, SweepRules(max_actions=2))
    assert [f.action for f in found].count(SweepAction.TERMINATE) == 2
    assert all("cap of 2" in f.skipped for f in found if f.action is None)
    reports = _select(views, SweepRules(action=SweepAction.REPORT, max_actions=2))
    assert all(f.action is SweepAction.REPORT for f in reports)


def test_the_cap_is_shared_round_robin_between_namespaces() -> None:
    # a has ten stuck pods and sorts first: it must not take the whole cap at every sweep.
    views = [_stuck(f"p{i}", namespace="a") for i in range(10)]
    views += [_stuck("p0", namespace="b"), _stuck("p1", namespace="b"), _stuck("p0", namespace="c")]
    found = _select(views, SweepRules(max_actions=5))
    acted = [(f.view.namespace, f.view.name) for f in found if f.action is SweepAction.TERMINATE]
    assert acted == [("a", "p0"), ("b", "p0"), ("c", "p0"), ("a", "p1"), ("b", "p1")]
    assert all(f.view.namespace == "a" and "cap of 5" in f.skipped for f in found[5:])
    rules = SweepRules(max_actions=3)
    later = select([(v, POLICY) for v in views], JOBS, WallTime(ENDED_AT + 700), rules, after="b")
    assert [f.view.namespace for f in later[:3]] == ["c", "a", "b"]  # the round goes on after b


class _Silent(Publisher):
    def publish(self, view: PodView, report: Report, policy_name: str | None = None) -> None:
        pass


class _Watched(Kept):
    """The reconciler as the sweeper sees it: kept views, and the pods it was told to restart."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        super().__init__(stopper(), [parse_pod(b) for b in bodies], publisher=_Silent())
        self.restarted: list[str] = []

    async def restart(
        self,
        view: PodView,
        candidates: Iterable[PolicySource],
        forget: Callable[[PodMemory], PodMemory],
    ) -> None:
        self.restarted.append(view.namespace)


def test_with_more_namespaces_than_the_cap_each_gets_its_turn_over_sweeps() -> None:
    bodies = [_body(f"p{i}", namespace=ns) for ns in "abc" for i in range(2)]
    for body in bodies:
        body["metadata"]["annotations"] = {PRIMARY_ANNOTATION: "main"}
    watched = _Watched(bodies)
    sweeper = Sweeper(MockReads(), watched, SweepRules(max_actions=2))

    async def three_sweeps() -> None:
        for _ in range(3):
            await sweeper.sweep_annotated(lambda _: ())

    asyncio.run(three_sweeps())
    assert watched.restarted == ["a", "b", "c", "a", "b", "c"]


def test_terminal_pods_are_not_swept() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "m")), status("proxy", terminated(0, "p"))],
        phase="Succeeded",
    )
    assert _select([parse_pod(body)], SweepRules(), jobs={}) == []


@pytest.mark.parametrize(
    "owners",
    [
        [],  # a Job deleted with --cascade=orphan, or a bare pod with the job-name label
        [{"kind": "Job", "apiVersion": "batch/v1", "name": "job-x", "uid": "job-uid"}],
        [
            {
                "kind": "ReplicaSet",
                "apiVersion": "apps/v1",
                "name": "rs",
                "uid": "rs-uid",
                "controller": True,
            }
        ],
    ],
    ids=["no-owner", "job-owner-not-controller", "replicaset"],
)
@pytest.mark.parametrize("action", list(SweepAction))
def test_a_pod_no_job_controls_is_never_swept(owners: list[Any], action: SweepAction) -> None:
    body = _body("a")
    body["metadata"]["ownerReferences"] = owners  # the batch.kubernetes.io/job-name label stays
    rules = SweepRules(action=action, deletion_enabled=True, allow_deleting_succeeded=True)
    assert _select([parse_pod(body)], rules, jobs={}) == []
    assert _select([parse_pod(body)], rules) == []
    [found] = _select([_stuck("real")], rules, jobs={})  # the same pod, controlled by its Job
    assert found.action is action and "no longer exists" in found.why


def _remembering(memory: PodMemory, view: Any = None, rules: Any = None) -> Any:
    view = view or _stuck("a")
    [found] = select(
        [(view, POLICY)],
        JOBS,
        WallTime(ENDED_AT + 700),
        rules or SweepRules(),
        memories={view.uid: memory},
    )
    return found


def test_terminate_reruns_the_stop_at_most_max_reruns_times_per_run_of_the_primaries() -> None:
    ended = primaries_ended(_stuck("a"), ("main",))
    assert ended is not None
    key = ended.key
    fresh = _remembering(PodMemory())
    assert fresh.action is SweepAction.TERMINATE and fresh.attempt_key == key
    assert fresh.report.message.endswith(
        f"sweep action Terminate (re-run 1 of at most {MAX_RERUNS})"
    )
    last = _remembering(PodMemory(swept=key, reruns=MAX_RERUNS - 1))
    assert last.action is SweepAction.TERMINATE and last.rerun == MAX_RERUNS
    done = _remembering(PodMemory(swept=key, reruns=MAX_RERUNS))
    assert done.action is None and done.report.reason is Reason.SWEEP_SKIPPED
    assert f"re-ran the stop {MAX_RERUNS} times for this run of its primaries" in done.skipped
    new_run = _remembering(PodMemory(swept="main=an-earlier-run", reruns=MAX_RERUNS))
    assert new_run.action is SweepAction.TERMINATE and new_run.rerun == 1
    looped = _remembering(PodMemory(gave_up=True))
    assert looped.action is None and "loop guard gave up on it (SidecarStopLoop)" in looped.skipped
    dry = SweepRules(action=SweepAction.REPORT)
    assert _remembering(PodMemory(swept=key, reruns=MAX_RERUNS), rules=dry).action is dry.action


def test_terminate_forgets_the_stops_and_keeps_what_was_told_and_the_guard() -> None:
    stopped = SidecarRecord("k", "p", Outcome.SUCCESS, DEFAULT_STOP, Monotonic(1.0), 1)
    memory = PodMemory(
        sidecars={"proxy": stopped},
        reported=frozenset({once_key(Told.ENDED, "k")}),
        no_shell=frozenset({"proxy"}),
        helper_target="proxy",
        finished="k",
        finished_at=Monotonic(2.0),
        finishes=2,
    )
    found = _remembering(memory)
    forgotten = found.forget(memory)
    assert forgotten == PodMemory(
        reported=memory.reported, no_shell=memory.no_shell, swept=found.attempt_key, reruns=1
    )  # the helper was never added: the re-run may add it
    assert found.forget(forgotten).reruns == 2
    body = pod(
        ["main", "proxy"], [status("main", terminated(0, "m")), status("proxy", running("p"))]
    )
    body["spec"]["ephemeralContainers"] = [{"name": HELPER_NAME, "image": "busybox"}]
    body["metadata"]["uid"] = "a"
    helped = _remembering(memory, view=parse_pod(body))
    assert helped.forget(memory).helper_target == "proxy"  # added once per pod


@pytest.mark.parametrize(
    ("raw", "kept"), [(30, 30), (0, 0), (-1, None), (True, None), ("30", None), (None, None)]
)
def test_the_deletes_grace_period_is_the_pods_own_when_it_is_a_count_of_seconds(
    raw: Any, kept: int | None
) -> None:
    body = _body("p")
    body["spec"]["terminationGracePeriodSeconds"] = raw
    assert parse_pod(body).grace_period == kept


def test_a_policy_may_lower_the_operators_sweep_cap_but_never_raise_it() -> None:
    operators = SweepRules(max_actions=20)
    assert rules_from({"sweep": {"maxActionsPerSweep": 1000}}, False, operators).max_actions == 20
    assert rules_from({"sweep": {"maxActionsPerSweep": 5}}, False, operators).max_actions == 5
    assert rules_from({}, False, operators).max_actions == 20


def test_a_namespaces_policies_share_one_sweep_budget() -> None:
    """Each SidecarPolicy sweeps on its own timer: three policies in one namespace, each allowed
    2 actions, act on 2 pods in all per window, not 6; the next window acts again, and another
    namespace has its own budget."""
    now = [0.0]
    budget = NamespaceBudget(2, window=60.0, clock=lambda: now[0])
    assert [budget.take("a") for _ in range(3)] == [True, True, False]
    assert budget.take("b")  # another namespace: its own budget
    now[0] = 60.0
    assert budget.take("a")  # the next window

    bodies = [_body(f"p{i}", namespace="a") for i in range(6)]
    for body in bodies:
        body["metadata"]["annotations"] = {PRIMARY_ANNOTATION: "main"}
    watched = _Watched(bodies)
    sweeper = Sweeper(
        MockReads(), watched, SweepRules(max_actions=2), NamespaceBudget(2, window=60.0)
    )

    async def three_policies() -> None:
        for _ in range(3):
            await sweeper.sweep_annotated(lambda _: ())

    asyncio.run(three_policies())
    assert watched.restarted == ["a", "a"]  # without the budget: 6


def test_the_sweep_tells_each_key_once_and_forgets_its_oldest_pods_past_its_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tandem.runtime.sweeper._TOLD_REMEMBERED", 3)
    sweeper = Sweeper(MockReads(), _Watched([]), SweepRules())
    skipped = once_key(Told.SWEEP_SKIPPED, "main=c1", "why")
    assert sweeper._tell_once("a", skipped) and not sweeper._tell_once("a", skipped)
    assert sweeper._tell_once("b", skipped)  # another pod
    assert sweeper._tell_once("a", once_key(Told.SWEEP_REPORT, "main=c1"))  # another key
    assert sweeper._tell_once("c", skipped)  # a fourth key: pod b, told least recently, goes
    assert not sweeper._tell_once("a", skipped) and not sweeper._tell_once("c", skipped)
    assert sweeper._tell_once("b", skipped)  # forgotten, so told again; now pod a goes
    assert sweeper._tell_once("a", skipped)
