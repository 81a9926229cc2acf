"""Finishing by phase: which pods get a phase, which sidecars get a graceful stop first, the one
Event, a phase write that did not land, and a pod whose written phase was not kept."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tandem.core import (
    ActionKind,
    CoreSettings,
    EventType,
    ExecResult,
    Finish,
    Learned,
    Monotonic,
    Phase,
    PodMemory,
    Reason,
    Recheck,
    Report,
    Stop,
    Tally,
    decide,
    handle,
    learn,
    parse_pod,
    parse_spec,
    resolve,
)
from tandem.core.finish.phase.finish import (
    MAX_PHASE_WRITES,
    MAX_PUT_BACK_WRITES,
    NOT_KEPT_SLACK,
    RETRY_AFTER,
)
from tandem.core.policy.policy import PolicySource

from .pods import PRIMARY, failed_in_back_off, pod, running, status, terminated

HAPROXY = "docker.io/library/haproxy:2.8"


def run(
    body: dict[str, Any],
    memory: PodMemory | None = None,
    now: float = 100.0,
    keeps: bool = True,
    candidates: tuple[PolicySource, ...] = (),
    *,
    exec_stops: bool = True,
) -> Any:
    view = parse_pod(body)
    if candidates:
        return handle(
            view,
            candidates,
            memory or PodMemory(),
            Monotonic(now),
            CoreSettings(kubelet_keeps_phase=keeps),
        )
    policy = resolve(view.labels, view.annotations, ()).policy
    return decide(
        view,
        policy,
        memory or PodMemory(),
        Monotonic(now),
        CoreSettings(kubelet_keeps_phase=keeps, exec_stops=exec_stops),
    )


def _learn(memory: PodMemory, action: Finish | Stop, result: ExecResult) -> Learned:
    """What carrying out ACTION came to, as the reconciler hands it back to the core."""
    return learn(memory, action, result, Monotonic(0.0))


def of(decision: Any, kind: type) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, kind)]


def ended(code: int, proxy_image: str = "busybox", **extra: Any) -> dict[str, Any]:
    return pod(
        ["main", "proxy"],
        [status("main", terminated(code, "c1")), status("proxy", running("c2"))],
        annotations=extra.pop("annotations", PRIMARY),
        images={"proxy": proxy_image},
        resource_version="42",
        **extra,
    )


def test_success_writes_succeeded_with_preconditions_and_no_event_yet() -> None:
    decision = run(ended(0))
    [finish] = of(decision, Finish)
    assert finish.phase is Phase.SUCCEEDED and finish.tally is Tally.SUCCEEDED
    assert (finish.uid, finish.resource_version) == ("uid-1", "42")
    assert "proxy: the kubelet stops it" in finish.message
    assert of(decision, Stop) == [] and of(decision, Report) == []  # an unknown sidecar: no exec
    assert of(decision, Recheck) == [Recheck(RETRY_AFTER)]  # if the write does not land


def test_failure_under_never_writes_failed() -> None:
    [finish] = of(run(ended(3)), Finish)
    assert finish.phase is Phase.FAILED and finish.tally is Tally.FAILED


def test_a_node_that_does_not_keep_the_phase_gets_the_exit_code_path() -> None:
    decision = run(ended(0), keeps=False)
    assert of(decision, Finish) == []
    [stop] = of(decision, Stop)
    assert stop.action.signal == "TERM" and stop.announce


def test_finish_exit_codes_keeps_todays_path() -> None:
    decision = run(ended(0, annotations={**PRIMARY, "tandem.dev/finish": "ExitCodes"}))
    assert of(decision, Finish) == [] and len(of(decision, Stop)) == 1


def test_a_well_known_sidecar_gets_its_graceful_stop_before_the_phase() -> None:
    decision = run(ended(0, HAPROXY))
    [stop] = of(decision, Stop)
    [finish] = of(decision, Finish)
    assert stop.action.signal == "USR1" and not stop.announce
    assert decision.actions.index(stop) < decision.actions.index(finish)
    assert "proxy got signal USR1 via exec (known: haproxy)" in finish.message


def test_the_policys_own_action_wins_over_knowledge() -> None:
    spec = {
        "selector": {},
        "primaryContainers": ["main"],
        "sidecars": [{"name": "proxy", "onSuccess": {"signal": "QUIT"}}],
    }
    decision = run(ended(0, HAPROXY, annotations={}), candidates=(PolicySource("p", spec),))
    [stop] = of(decision, Stop)
    assert stop.action.signal == "QUIT"
    assert "(policy)" in of(decision, Finish)[0].message


@pytest.mark.parametrize("finish", ["Phase", "ExitCodes"])
@pytest.mark.parametrize("default_action", [{}, None])
def test_an_empty_default_action_is_no_action(
    default_action: dict[str, Any] | None, finish: str
) -> None:
    """`defaultAction: {}` names no stop: a well-known sidecar keeps its clean stop (haproxy's
    USR1), as without the field; it used to count as an explicit TERM, which haproxy as PID 1
    ignores."""
    spec: dict[str, Any] = {"selector": {}, "primaryContainers": ["main"], "finish": finish}
    if default_action is not None:
        spec["defaultAction"] = default_action
    decision = run(ended(0, HAPROXY, annotations={}), candidates=(PolicySource("p", spec),))
    [stop] = of(decision, Stop)
    assert stop.action.signal == "USR1"
    assert parse_spec("p", spec).explicit("proxy") is None
    given = {**spec, "defaultAction": {"onSuccess": {"signal": "QUIT"}}}
    [stop] = of(
        run(ended(0, HAPROXY, annotations={}), candidates=(PolicySource("p", given),)), Stop
    )
    assert stop.action.signal == "QUIT"  # a defaultAction that names a stop still wins


def test_onfailure_failure_restarts_in_tandem_with_kill_under_a_shared_pid_namespace() -> None:
    body = failed_in_back_off(status("proxy", running("c2")), share_pid=True)
    decision = run(body)
    assert of(decision, Finish) == []
    [stop] = of(decision, Stop)
    assert stop.action.kind is ActionKind.SIGNAL and stop.action.signal == "KILL"


def test_onfailure_failure_replaces_the_pod_when_a_sidecar_exited_0() -> None:
    body = failed_in_back_off(status("proxy", terminated(0, "c2")))
    [finish] = of(run(body), Finish)
    assert finish.phase is Phase.FAILED and "proxy will not restart" in finish.message
    assert "replaces the pod" in finish.message


def test_a_landed_phase_write_is_never_repeated() -> None:
    first = run(ended(0), now=100.0)
    [finish] = of(first, Finish)
    memory = _learn(first.memory, finish, ExecResult(0)).memory
    for now in (101.0, 100.0 + RETRY_AFTER, 1000.0):  # an older view, or a re-check
        later = run(ended(0), memory=memory, now=now)
        assert later.actions == (), now


def test_a_phase_write_that_did_not_land_is_tried_again_a_bounded_number_of_times() -> None:
    decision, now = run(ended(0), now=0.0), 0.0
    timeout = ExecResult(None, error="the call did not finish in 10s")
    writes = 0
    for _ in range(MAX_PHASE_WRITES + 3):
        for finish in of(decision, Finish):
            writes += 1
            learned = _learn(decision.memory, finish, timeout)
            assert learned.report is not None  # PodFinishFailed, each time
            decision = dataclasses.replace(decision, memory=learned.memory)
        soon = run(ended(0), memory=decision.memory, now=now + 1.0)
        assert of(soon, Finish) == []  # not before RETRY_AFTER
        now += RETRY_AFTER
        decision = run(ended(0), memory=decision.memory, now=now)
    assert writes == MAX_PHASE_WRITES
    assert of(decision, Report) == [] and of(decision, Recheck) == []  # no loop


def test_the_event_comes_when_the_phase_is_written_on_the_pod_and_its_job() -> None:
    [finish] = of(run(ended(0)), Finish)
    report = _learn(PodMemory(), finish, ExecResult(0)).report
    assert report is not None and report.reason is Reason.POD_FINISHED and report.on_job
    assert report.type is EventType.NORMAL and report.tally is Tally.SUCCEEDED


def test_a_pod_that_changed_under_the_patch_is_decided_afresh() -> None:
    decision = run(ended(0))
    [finish] = of(decision, Finish)
    conflict = ExecResult(None, error="Conflict", status=409)
    learned = _learn(decision.memory, finish, conflict)
    assert learned.report is None
    memory = learned.memory
    assert of(run(ended(0), memory=memory, now=101.0), Finish) != []
    assert (
        _learn(PodMemory(), finish, ExecResult(None, error="NotFound", status=404)).report is None
    )


def test_a_refused_phase_write_says_which_permission_is_missing() -> None:
    [finish] = of(run(ended(0)), Finish)
    report = _learn(PodMemory(), finish, ExecResult(None, error="Forbidden", status=403)).report
    assert report is not None and report.reason is Reason.POD_FINISH_FAILED
    assert "patch on pods/status" in report.message


def test_a_graceful_stop_is_not_announced_and_its_failure_stays_quiet() -> None:
    [stop] = of(run(ended(0, HAPROXY)), Stop)
    assert _learn(PodMemory(), stop, ExecResult(0)).report is None
    assert _learn(PodMemory(), stop, ExecResult(1, stderr="kill: no such process")).report is None


def test_a_terminal_pod_is_never_written() -> None:
    body = ended(0)
    body["status"]["phase"] = "Succeeded"
    assert of(run(body), Finish) == []


def test_a_pod_that_ended_by_itself_before_the_write_landed_is_still_told_once() -> None:
    decision = run(ended(0, HAPROXY))
    [finish] = of(decision, Finish)
    memory = _learn(decision.memory, finish, ExecResult(None, error="Conflict", status=409)).memory
    body = ended(0, HAPROXY)
    body["status"]["phase"] = "Succeeded"
    told = run(body, memory=memory, now=101.0)
    [report] = of(told, Report)
    assert report.reason is Reason.POD_FINISHED and "by itself" in report.message
    assert of(told, Finish) == [] and of(run(body, memory=told.memory, now=102.0), Report) == []


def test_a_write_whose_answer_was_lost_is_told_as_tandems_once() -> None:
    decision = run(ended(0))
    [finish] = of(decision, Finish)
    lost = ExecResult(None, error="Conflict", status=409)  # it landed; a resend met the change
    memory = _learn(decision.memory, finish, lost).memory
    body = ended(0)
    body["status"]["phase"] = "Succeeded"
    body["metadata"]["annotations"] = {**PRIMARY, "tandem.dev/finished": "Succeeded"}
    told = run(body, memory=memory, now=101.0)
    [report] = of(told, Report)
    assert report.reason is Reason.POD_FINISHED and "Tandem's write landed" in report.message
    assert of(told, Finish) == [] and of(run(body, memory=told.memory, now=102.0), Report) == []


def test_a_written_phase_is_told_once_not_again_when_the_pod_shows_it() -> None:
    decision = run(ended(0))
    [finish] = of(decision, Finish)
    memory = _learn(decision.memory, finish, ExecResult(0)).memory
    body = ended(0)
    body["status"]["phase"] = "Succeeded"
    assert of(run(body, memory=memory, now=101.0), Report) == []


def _not_kept(body: dict[str, Any]) -> dict[str, Any]:
    """BODY after Tandem's write, with the phase put back to Running by another writer."""
    annotations = body["metadata"]["annotations"]
    body["metadata"]["annotations"] = {**annotations, "tandem.dev/finished": "Succeeded"}
    body["status"]["conditions"] = [{"type": "tandem.dev/Finished", "status": "True"}]
    return body


def _put_back_twice(
    memory: PodMemory, now: float, exec_stops: bool = True
) -> tuple[PodMemory, list[Finish]]:
    """The kubelet puts the pod back after Tandem's write, and after each write again."""
    writes = []
    for step in range(MAX_PUT_BACK_WRITES):
        decision = run(_not_kept(ended(0)), memory=memory, now=now + step, exec_stops=exec_stops)
        assert of(decision, Report) == [] and of(decision, Stop) == []
        [finish] = of(decision, Finish)
        writes.append(finish)
        memory = _learn(decision.memory, finish, ExecResult(0)).memory
    return memory, writes


def test_a_written_phase_put_back_is_written_again_then_waited_out_then_one_warning() -> None:
    first = run(ended(0), now=100.0)
    [finish] = of(first, Finish)
    memory = _learn(first.memory, finish, ExecResult(0)).memory
    # The kubelet's status manager wrote its Running back before its pod worker took the phase.
    memory, writes = _put_back_twice(memory, now=101.0)
    assert [(w.phase, w.again) for w in writes] == [(Phase.SUCCEEDED, True)] * MAX_PUT_BACK_WRITES
    assert all("written again" in w.message for w in writes)
    # A write again that landed is not told again: its PodFinished came with the first.
    assert _learn(PodMemory(), writes[0], ExecResult(0)).report is None
    assert (
        _learn(PodMemory(), writes[0], ExecResult(1, status=500, error="boom")).report is not None
    )
    # Put back as often as written: waited out for the grace period and some, from the first write.
    due = 30 + NOT_KEPT_SLACK  # the pod says no terminationGracePeriodSeconds: 30
    waited = run(_not_kept(ended(0)), memory=memory, now=110.0)
    assert of(waited, Finish) == [] and of(waited, Report) == []
    assert of(waited, Recheck) == [Recheck(due - 10.0)]
    late = run(_not_kept(ended(0)), memory=waited.memory, now=100.0 + due)
    [warning] = of(late, Report)
    assert warning.type is EventType.WARNING and warning.reason is Reason.POD_FINISH_NOT_KEPT
    assert "did not keep" in warning.message and "ExitCodes" in warning.message
    assert of(late, Finish) == [] and of(late, Recheck) == []
    assert run(_not_kept(ended(0)), memory=late.memory, now=1000.0).actions == ()


@pytest.mark.parametrize("exec_stops", [True, False], ids=["exec", "no-exec"])
def test_the_not_kept_warning_names_exec_only_where_tandem_may_not_exec(exec_stops: bool) -> None:
    """Without exec, ExitCodes is finished by phase too: the fix must say to opt into exec."""
    first = run(ended(0), now=100.0, exec_stops=exec_stops)
    [finish] = of(first, Finish)
    memory, _ = _put_back_twice(
        _learn(first.memory, finish, ExecResult(0)).memory, now=101.0, exec_stops=exec_stops
    )
    late = run(_not_kept(ended(0)), memory=memory, now=1000.0, exec_stops=exec_stops)
    [warning] = of(late, Report)
    assert warning.reason is Reason.POD_FINISH_NOT_KEPT and "ExitCodes" in warning.message
    assert ("tandem.dev/exec=allowed" in warning.message) is not exec_stops


def test_a_phase_put_back_is_not_written_again_when_the_annotation_says_another() -> None:
    first = run(ended(0), now=100.0)
    [finish] = of(first, Finish)
    memory = _learn(first.memory, finish, ExecResult(0)).memory
    body = _not_kept(ended(0))
    body["metadata"]["annotations"]["tandem.dev/finished"] = "Failed"
    assert of(run(body, memory=memory, now=101.0), Finish) == []
    assert len(of(run(_not_kept(ended(0)), memory=memory, now=101.0), Finish)) == 1  # control


def test_a_put_back_phase_that_comes_back_terminal_gets_no_warning() -> None:
    first = run(ended(0), now=100.0)
    [finish] = of(first, Finish)
    memory = _learn(first.memory, finish, ExecResult(0)).memory
    again = run(_not_kept(ended(0)), memory=memory, now=101.0)
    [rewrite] = of(again, Finish)
    back = _not_kept(ended(0))
    back["status"]["phase"] = "Succeeded"
    memory = _learn(again.memory, rewrite, ExecResult(0)).memory
    assert run(back, memory=memory, now=200.0).actions == ()


def test_after_a_restart_of_tandem_a_phase_put_back_is_written_again_not_told_again() -> None:
    decision = run(_not_kept(ended(0, HAPROXY)), now=100.0)  # no memory: a new operator
    assert of(decision, Report) == [] and of(decision, Stop) == []
    [finish] = of(decision, Finish)
    assert finish.again and _learn(PodMemory(), finish, ExecResult(0)).report is None
    # Its end is not told a second time: the Tandem that wrote it told PodFinished.
    body = _not_kept(ended(0, HAPROXY))
    body["status"]["phase"] = "Succeeded"
    memory = _learn(decision.memory, finish, ExecResult(0)).memory
    assert of(run(body, memory=memory, now=500.0), Report) == []
    # The positive control: the same pod without Tandem's annotation is written, and told.
    [first] = of(run(ended(0, HAPROXY)), Finish)
    assert not first.again and _learn(PodMemory(), first, ExecResult(0)).report is not None


def test_with_no_sidecar_left_running_the_kubelet_ends_the_pod_alone() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", terminated(0, "c2"))],
        annotations=PRIMARY,
    )
    assert run(body).actions == ()


def test_a_pod_carrying_tandems_finish_is_not_the_sweeps() -> None:
    written = run(_not_kept(ended(0)))
    assert not written.sweepable and of(written, Recheck) != []  # written again, then re-checked
    assert run(ended(0)).sweepable  # the positive control: the same pod, not yet written
