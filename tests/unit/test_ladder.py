"""Paths and escalation: how Tandem reaches sidecars that do not go quietly."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from tandem.core import (
    HELPER_NAME,
    ActionKind,
    AddHelper,
    CoreSettings,
    Decision,
    Delivery,
    ExecResult,
    Monotonic,
    PodMemory,
    Reason,
    Recheck,
    Report,
    Stop,
    StopPath,
    decide,
    learn,
    parse_pod,
    parse_spec,
)
from tandem.core.finish.decision import MAX_RESENDS
from tandem.core.finish.learn import RESEND_AFTER
from tandem.core.finish.routes import argv_for, choose_path
from tandem.core.model.once import Told, once_key
from tandem.core.policy.policy import DEFAULT_STOP, KILL, StopAction
from tandem.core.policy.stop_action import ForcedPath

from .pods import HELPER_IMAGE, helper_container, pod, running, status, terminated

CID = "containerd://abc123"


def _pod(
    main_code: int, *, share_pid: bool = False, restart: str = "Never", helper: str | None = None
) -> dict[str, Any]:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(main_code, "m1")), status("proxy", running(CID))],
        restart_policy=restart,
        share_pid=share_pid,
    )
    if helper:
        body["spec"]["ephemeralContainers"] = [helper_container()]
        body["status"]["ephemeralContainerStatuses"] = [
            status(HELPER_NAME, running("h1"))
            if helper == "running"
            else {"name": HELPER_NAME, "state": {"waiting": {}}}
        ]
    return body


POLICY = parse_spec("p", {"primaryContainers": ["main"], "gracePeriodSeconds": 10})


def _run(body: dict[str, Any], memory: PodMemory, now: float, helper: bool = True) -> Decision:
    image = HELPER_IMAGE if helper else ""
    return decide(parse_pod(body), POLICY, memory, Monotonic(now), CoreSettings(helper_image=image))


def _stops(decision: Decision) -> list[Stop]:
    return [a for a in decision.actions if isinstance(a, Stop)]


def _reasons(decision: Decision) -> list[Reason]:
    return [a.reason for a in decision.actions if isinstance(a, Report)]


def test_failure_with_shared_pid_escalates_term_then_kill_then_gives_up() -> None:
    body = _pod(3, share_pid=True)
    d1 = _run(body, PodMemory(), 0.0)
    [term] = _stops(d1)
    assert (term.action, term.path, term.container) == (DEFAULT_STOP, StopPath.SHARED_PID, "proxy")
    assert term.argv[-2:] == ("abc123", "TERM") and 'kill -s "$2" "$main"' in term.argv[2]
    assert _stops(_run(body, d1.memory, 9.0)) == []
    d2 = _run(body, d1.memory, 10.5)
    [kill] = _stops(d2)
    assert (kill.action, kill.step, kill.path) == (KILL, 1, StopPath.SHARED_PID)
    d3 = _run(body, d2.memory, 21.0)
    assert _stops(d3) == [] and _reasons(d3) == [Reason.SIDECAR_UNSTOPPABLE]
    assert _run(body, d3.memory, 40.0).actions == ()


def test_kill_is_skipped_without_shared_pid_and_the_cause_is_named() -> None:
    body = _pod(3)
    d1 = _run(body, PodMemory(), 0.0)
    [term] = _stops(d1)
    assert term.path is StopPath.EXEC and term.argv == ("/bin/sh", "-c", "kill -s TERM 1")
    d2 = _run(body, d1.memory, 11.0)
    [report] = [a for a in d2.actions if isinstance(a, Report)]
    assert report.reason is Reason.SIDECAR_UNSTOPPABLE
    assert "shareProcessNamespace" in report.message and "native sidecar" in report.message


# What the stopper's call comes to, for each Delivery.
_RESULTS = {
    Delivery.DELIVERED: ExecResult(0),
    Delivery.FAILED: ExecResult(None, error="Handshake status 500", status=500),
    Delivery.NO_SHELL: ExecResult(None, error='exec: "/bin/sh": no such file or directory'),
}


def _learn(memory: PodMemory, stop: Stop, delivery: Delivery, now: Monotonic) -> PodMemory:
    """The memory after STOP came to DELIVERY, as the reconciler hands it back to the core."""
    learned = learn(memory, stop, _RESULTS[delivery], now)
    assert learned.delivery is delivery
    return learned.memory


def test_a_shell_less_sidecar_is_stopped_through_the_helper() -> None:
    d1 = _run(_pod(0), PodMemory(), 0.0)
    [first] = _stops(d1)
    memory = _learn(d1.memory, first, Delivery.NO_SHELL, Monotonic(0.1))
    # Decided again at once, along the next path, not at the next event.
    assert learn(d1.memory, first, _RESULTS[Delivery.NO_SHELL], Monotonic(0.1)).recheck == Recheck(
        0
    )
    d2 = _run(_pod(0), memory, 0.5)
    [add] = [a for a in d2.actions if isinstance(a, AddHelper)]
    assert add.target == "proxy" and _stops(d2) == []
    assert _stops(_run(_pod(0, helper="waiting"), d2.memory, 1.0)) == []
    d4 = _run(_pod(0, helper="running"), d2.memory, 2.0)
    [via_helper] = _stops(d4)
    assert (via_helper.container, via_helper.path) == (HELPER_NAME, StopPath.HELPER)
    assert via_helper.argv == ("/bin/sh", "-c", "kill -s TERM 1")
    assert Reason.PRIMARIES_FINISHED in _reasons(d1)  # once, with the first try


def test_without_the_helper_a_shell_less_sidecar_is_unstoppable() -> None:
    d1 = _run(_pod(0), PodMemory(), 0.0, helper=False)
    memory = _learn(d1.memory, _stops(d1)[0], Delivery.NO_SHELL, Monotonic(0.1))
    d2 = _run(_pod(0), memory, 0.5, helper=False)
    assert _stops(d2) == [] and _reasons(d2) == [Reason.SIDECAR_UNSTOPPABLE]


def test_a_stop_the_api_refused_is_not_followed_by_blame_or_escalation() -> None:
    # The exec never got through (429/500 after the stopper's retries):
    # SidecarStopFailed said so. No SidecarUnstoppable telling the user to fix the sidecar, and
    # no KILL on a path that fails the same way; the sweeper's Terminate is the retry.
    for main_code, share_pid in ((0, False), (3, True)):
        body = _pod(main_code, share_pid=share_pid)
        d1 = _run(body, PodMemory(), 0.0)
        [stop] = _stops(d1)
        memory = _learn(d1.memory, stop, Delivery.FAILED, Monotonic(7.5))
        assert memory.sidecars["proxy"].exhausted
        for later in (11.0, 22.0, 60.0):
            decision = _run(body, memory, later)
            assert _stops(decision) == [] and _reasons(decision) == [], decision.actions
        # What the sweeper's Terminate does: forget, and the whole stop runs again.
        assert len(_stops(_run(body, PodMemory(), 61.0))) == 1


def test_a_stop_whose_call_went_unanswered_is_sent_once_more_after_its_grace_period() -> None:
    # An exec into an API server that closed mid-call: no answer, so the TERM may have run. The
    # sidecar gets its grace period from then; still running, it gets the same TERM once more,
    # not the KILL a delivered TERM escalates to (a stronger stop could end it with the wrong
    # exit code). A second call without an answer is given up, as a refusal is.
    body = _pod(3, share_pid=True)
    lost = ExecResult(None, error="the exec stream closed without a status")
    d1 = _run(body, PodMemory(), 0.0)
    [term] = _stops(d1)
    first = learn(d1.memory, term, lost, Monotonic(2.0))
    assert first.delivery is Delivery.UNCONFIRMED and first.memory.sidecars["proxy"].unconfirmed
    assert first.report is not None and first.report.reason is Reason.SIDECAR_STOP_FAILED
    assert _run(body, first.memory, 11.0).actions == (Recheck(2.0),)  # the end of its grace
    [again] = _stops(d2 := _run(body, first.memory, 12.5))
    assert (again.action, again.step, again.repeat) == (term.action, term.step, True)
    second = learn(d2.memory, again, lost, Monotonic(13.0))
    assert second.delivery is Delivery.FAILED and second.memory.sidecars["proxy"].exhausted
    assert second.report is not None and "(sent again after its grace period)" in (
        second.report.message
    )
    assert _stops(_run(body, second.memory, 30.0)) == []  # then the sweep's Terminate
    # The control: the same TERM delivered is followed by the next step, KILL.
    delivered = _learn(d1.memory, term, Delivery.DELIVERED, Monotonic(2.0))
    [kill] = _stops(_run(body, delivered, 12.5))
    assert kill.action == KILL and not kill.repeat
    # A sidecar that ended within its grace period is not sent anything again.
    ended = _pod(3, share_pid=True)
    ended["status"]["containerStatuses"][1] = status("proxy", terminated(143, CID))
    assert _stops(_run(ended, first.memory, 12.5)) == []


def test_a_repeat_that_reached_no_api_server_is_sent_again_as_the_repeat() -> None:
    # The repeat of an unanswered TERM found no API server (a restart): it surely did not run,
    # and is sent again later as that repeat, never as a fresh first TERM that could go
    # unanswered and earn a repeat of its own.
    body = _pod(0)
    lost = ExecResult(None, error="the exec stream closed without a status")
    unreached = ExecResult(None, error="[Errno 111] Connection refused", refused=True)
    d1 = _run(body, PodMemory(), 0.0)
    [term] = _stops(d1)
    first = learn(d1.memory, term, lost, Monotonic(1.0))
    [again] = _stops(d2 := _run(body, first.memory, 12.0))
    resent = learn(d2.memory, again, unreached, Monotonic(12.5))
    assert resent.delivery is Delivery.UNREACHED and resent.recheck is not None
    assert resent.memory.sidecars["proxy"].unconfirmed
    [still] = _stops(_run(body, resent.memory, 12.5 + max(resent.recheck.after, 11.0)))
    assert (still.action, still.step, still.repeat) == (term.action, term.step, True)
    # The control: a first stop that reached no API server is forgotten and sent afresh.
    fresh = learn(d1.memory, term, unreached, Monotonic(1.0))
    assert "proxy" not in fresh.memory.sidecars


def test_a_repeat_is_the_same_action_only() -> None:
    # The policy changed between an unanswered call and its grace period's end: what goes out is
    # the new action, a first call of its own, not a repeat.
    body = _pod(0)
    lost = ExecResult(None, error="the exec stream closed without a status")
    d1 = _run(body, PodMemory(), 0.0)
    [term] = _stops(d1)
    first = learn(d1.memory, term, lost, Monotonic(1.0))
    record = first.memory.sidecars["proxy"]
    other = StopAction(kind=ActionKind.SIGNAL, signal="INT")
    changed = first.memory.with_sidecar("proxy", dataclasses.replace(record, action=other))
    [sent] = _stops(_run(body, changed, 12.0))
    assert sent.action == term.action and not sent.repeat


def test_the_grace_period_runs_from_when_a_retried_stop_got_through() -> None:
    # The exec was refused and retried for 7.5 s before it got through: the sidecar still has
    # its whole grace period (10 s) from then before Tandem escalates.
    body = _pod(3, share_pid=True)
    d1 = _run(body, PodMemory(), 0.0)
    [term] = _stops(d1)
    memory = _learn(d1.memory, term, Delivery.DELIVERED, Monotonic(7.5))
    assert _run(body, memory, 11.0).actions == (Recheck(7.5),)  # the end of its grace period
    [kill] = _stops(_run(body, memory, 17.5))
    assert kill.action == KILL


def test_a_late_result_of_an_older_stop_leaves_the_newer_one_alone() -> None:
    body = _pod(0)
    d1 = _run(body, PodMemory(), 0.0)
    [stop] = _stops(d1)
    older = dataclasses.replace(stop, attempt=stop.attempt - 1)
    assert _learn(d1.memory, older, Delivery.DELIVERED, Monotonic(7.5)) == d1.memory
    # A refusal is told (its SidecarStopFailed, once); all else is as the newer stop left it.
    learned = learn(d1.memory, older, _RESULTS[Delivery.FAILED], Monotonic(7.5))
    assert learned.report is not None and learned.report.reason is Reason.SIDECAR_STOP_FAILED
    told = once_key(Told.STOP_FAILED, older.container_id, learned.report.message)
    assert learned.memory.reported == d1.memory.reported | {told}
    assert dataclasses.replace(learned.memory, reported=d1.memory.reported) == d1.memory


def test_presets_are_http_posts_on_loopback() -> None:
    policy = parse_spec(
        "p",
        {
            "primaryContainers": ["main"],
            "sidecars": [{"name": "proxy", "onSuccess": {"preset": "istio"}}],
        },
    )
    action = policy.actions["proxy"].on_success
    assert (action.kind, action.port, action.path) == ("httpPost", 15020, "/quitquitquit")
    argv = argv_for(action, StopPath.HELPER, CID)
    assert argv[-2:] == ("http://127.0.0.1:15020/quitquitquit", "post")
    assert "istio preset" in action.describe()


def test_path_choice() -> None:
    http = StopAction(kind=ActionKind.HTTP_POST, port=1, path="/")
    cmd = StopAction(kind=ActionKind.EXEC, command=("/bin/stop",))
    kw = functools.partial(choose_path, shared_pid=False, has_shell=True, helper_enabled=True)
    assert kw(DEFAULT_STOP) is StopPath.EXEC
    assert kw(DEFAULT_STOP, shared_pid=True) is StopPath.SHARED_PID
    assert kw(DEFAULT_STOP, has_shell=False) is StopPath.HELPER
    assert kw(http, has_shell=False, helper_enabled=False) is None
    assert kw(cmd, has_shell=False) is StopPath.EXEC
    assert kw(DEFAULT_STOP, forced=ForcedPath.SHARED_PID) is None
    assert kw(DEFAULT_STOP, shared_pid=True, forced=ForcedPath.EXEC) is StopPath.EXEC


def test_a_stop_that_reached_no_api_server_is_sent_again_later_a_bounded_number_of_times() -> None:
    # An API server's restart: no connection through all of the stopper's tries. The stop did
    # not run; it is decided again after a doubling wait, up to MAX_RESENDS per pod, and no
    # Event blames anyone meanwhile. An answering server's refusal (500) is told at once.
    unreached = ExecResult(None, error="[Errno 111] Connection refused", refused=True)
    body, memory, now = _pod(0), PodMemory(), 0.0
    waits = []
    for _ in range(MAX_RESENDS):
        [stop] = _stops(decision := _run(body, memory, now))
        learned = learn(decision.memory, stop, unreached, Monotonic(now))
        assert learned.delivery is Delivery.UNREACHED and learned.report is None
        assert learned.recheck is not None and "proxy" not in learned.memory.sidecars
        waits.append(learned.recheck.after)
        memory, now = learned.memory, now + learned.recheck.after
    assert waits == [RESEND_AFTER * 2**n for n in range(MAX_RESENDS)]
    [stop] = _stops(decision := _run(body, memory, now))  # sent again, and again unreached
    last = learn(decision.memory, stop, unreached, Monotonic(now))
    assert last.delivery is Delivery.FAILED and last.recheck is None
    assert last.report is not None and last.report.reason is Reason.SIDECAR_STOP_FAILED
    assert _stops(_run(body, last.memory, now + 60)) == []  # then the sweep's Terminate
    refused = learn(
        _run(body, PodMemory(), 0.0).memory, stop, _RESULTS[Delivery.FAILED], Monotonic(now)
    )
    assert refused.delivery is Delivery.FAILED
