"""Examples of `decide` over pod dicts: one behaviour per test."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.core import (
    ActionKind,
    CoreSettings,
    Decision,
    EventType,
    Finish,
    Monotonic,
    OnPrimaryFailure,
    Outcome,
    Phase,
    PodMemory,
    Policy,
    Reason,
    Recheck,
    Report,
    Stop,
    StopAction,
    decide,
    parse_pod,
    parse_spec,
    primaries_ended,
    resolve,
)
from tandem.core.policy.policy import SidecarActions

from .pods import PRIMARY, pod, running, status, terminated, waiting


def policy_for(body: dict[str, Any]) -> Policy | None:
    view = parse_pod(body)
    return resolve(view.labels, view.annotations, []).policy


def run(
    body: dict[str, Any],
    memory: PodMemory | None = None,
    now: float = 100.0,
    policy: Policy | None = None,
) -> Decision:
    policy = policy or policy_for(body)
    return decide(parse_pod(body), policy, memory or PodMemory(), Monotonic(now))


def stops(decision: Decision) -> list[Stop]:
    return [a for a in decision.actions if isinstance(a, Stop)]


def reports(decision: Decision) -> list[Report]:
    return [a for a in decision.actions if isinstance(a, Report)]


def test_unannotated_pod_is_left_alone() -> None:
    body = pod(
        ["main", "proxy"], [status("main", terminated(0, "c1")), status("proxy", running("c2"))]
    )
    assert run(body).actions == ()


def test_success_stops_running_sidecar_with_term_and_rechecks() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("c2"))],
        annotations=PRIMARY,
    )
    decision = run(body)
    [stop] = stops(decision)
    assert (stop.sidecar, stop.container_id, stop.outcome) == ("proxy", "c2", Outcome.SUCCESS)
    assert stop.argv == ("/bin/sh", "-c", "kill -s TERM 1")
    assert any(isinstance(a, Recheck) and a.after == 31.0 for a in decision.actions)
    assert [r.reason for r in reports(decision)] == [Reason.PRIMARIES_FINISHED]


def test_same_event_twice_acts_once() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("c2"))],
        annotations=PRIMARY,
    )
    first = run(body)
    second = run(body, memory=first.memory, now=101.0)
    assert second.actions == (Recheck(30.0),)  # only a look at the end of the grace period


def test_nothing_happens_while_a_primary_runs() -> None:
    body = pod(
        ["a", "b", "proxy"],
        [
            status("a", terminated(0, "c1")),
            status("b", running("c2")),
            status("proxy", running("c3")),
        ],
        annotations={"tandem.dev/primary": "a,b"},
    )
    assert run(body).actions == ()


def test_failure_under_never_stops_with_failure_action() -> None:
    spec = {
        "primaryContainers": ["main"],
        "sidecars": [{"name": "proxy", "onFailure": {"signal": "KILL"}}],
    }
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(3, "c1")), status("proxy", running("c2"))],
        share_pid=True,
    )
    [stop] = stops(run(body, policy=parse_spec("p", spec)))
    assert stop.outcome is Outcome.FAILURE and stop.action.signal == "KILL"
    assert stop.argv[-2:] == ("c2", "KILL")  # the container ID and signal, as arguments


def test_onfailure_failed_primary_in_backoff_counts_as_failure() -> None:
    body = pod(
        ["main", "proxy"],
        [
            status("main", waiting("CrashLoopBackOff"), last=terminated(3, "c1"), restarts=1),
            status("proxy", running("c2")),
        ],
        annotations=PRIMARY,
        restart_policy="OnFailure",
    )
    [stop] = stops(run(body))
    assert stop.outcome is Outcome.FAILURE


def test_onfailure_keep_leaves_sidecars_running_on_failure() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(3, "c1")), status("proxy", running("c2"))],
        annotations={**PRIMARY, "tandem.dev/on-primary-failure": "Keep"},
        restart_policy="OnFailure",
    )
    assert stops(run(body)) == []


def test_restart_together_does_not_stop_the_restarted_sidecar_again() -> None:
    first = pod(
        ["main", "proxy"],
        [status("main", terminated(3, "c1")), status("proxy", running("s1"))],
        annotations=PRIMARY,
        restart_policy="OnFailure",
    )
    d1 = run(first)
    restarted = pod(
        ["main", "proxy"],
        [
            status("main", waiting("CrashLoopBackOff"), last=terminated(3, "c1")),
            status("proxy", running("s2"), last=terminated(143, "s1"), restarts=1),
        ],
        annotations=PRIMARY,
        restart_policy="OnFailure",
    )
    d2 = run(restarted, memory=d1.memory, now=102.0)
    assert stops(d2) == []
    assert [r.reason for r in reports(d2)] == [Reason.SIDECAR_STOPPED]


def test_mismatch_on_success_is_a_warning_with_a_fix() -> None:
    base: dict[str, Any] = {"annotations": PRIMARY}
    d1 = run(
        pod(
            ["main", "proxy"],
            [status("main", terminated(0, "c1")), status("proxy", running("s1"))],
            **base,
        )
    )
    d2 = run(
        pod(
            ["main", "proxy"],
            [status("main", terminated(0, "c1")), status("proxy", terminated(143, "s1"))],
            phase="Failed",
            **base,
        ),
        memory=d1.memory,
    )
    [report] = reports(d2)
    assert report.type is EventType.WARNING and report.reason is Reason.SIDECAR_EXIT_MISMATCH
    assert "143" in report.message and "exit-zero-on-sigterm" in report.message


def test_loop_guard_gives_up_after_max_attempts() -> None:
    memory, now = PodMemory(), 100.0
    reasons: list[Reason] = []
    for run_no in range(1, 6):
        body = pod(
            ["main", "proxy"],
            [
                status("main", terminated(0, "c1")),
                status(
                    "proxy",
                    running(f"s{run_no}"),
                    restarts=run_no - 1,
                    last=terminated(143, f"s{run_no - 1}") if run_no > 1 else None,
                ),
            ],
            annotations=PRIMARY,
            restart_policy="OnFailure",
        )
        decision = run(body, memory=memory, now=now)
        memory, now = decision.memory, now + 1
        reasons += [r.reason for r in reports(decision)]
        if run_no <= 3:
            assert len(stops(decision)) == 1
        else:
            assert stops(decision) == []
    assert reasons.count(Reason.SIDECAR_STOP_LOOP) == 1
    assert memory.gave_up


def test_unstoppable_sidecar_is_reported_once_after_its_ladder() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("s1"))],
        annotations=PRIMARY,
    )
    d1 = run(body, now=0.0)
    assert run(body, memory=d1.memory, now=29.0).actions == (Recheck(2.0),)
    d3 = run(body, memory=d1.memory, now=31.0)
    assert [r.reason for r in reports(d3)] == [Reason.SIDECAR_UNSTOPPABLE]
    assert run(body, memory=d3.memory, now=60.0).actions == ()


def test_unknown_container_is_reported_once_and_nothing_else() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("s1"))],
        annotations={"tandem.dev/primary": "mian"},
    )
    d1 = run(body)
    [report] = d1.actions
    assert isinstance(report, Report) and report.reason is Reason.UNKNOWN_CONTAINER
    assert "mian" in report.message and "main, proxy" in report.message
    assert run(body, memory=d1.memory).actions == ()


def test_init_containers_and_native_sidecars_are_never_stopped() -> None:
    native = {"name": "mesh", "image": "x", "restartPolicy": "Always"}
    body = pod(["main"], [status("main", terminated(0, "c1"))], annotations=PRIMARY, init=[native])
    assert stops(run(body)) == []
    named = pod(
        ["main"],
        [status("main", terminated(0, "c1"))],
        annotations={**PRIMARY, "tandem.dev/sidecars": "mesh"},
        init=[native],
    )
    assert [r.reason for r in reports(run(named))] == [Reason.UNKNOWN_CONTAINER]


def test_terminal_pod_gets_no_stop() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("s1"))],
        annotations=PRIMARY,
        phase="Succeeded",
    )
    assert stops(run(body)) == []


def test_http_action_uses_wget_or_curl_on_loopback() -> None:
    policy = Policy(
        source="t",
        primaries=("main",),
        actions={
            "proxy": SidecarActions(
                on_success=StopAction(kind=ActionKind.HTTP_POST, port=9091, path="/quitquitquit")
            )
        },
    )
    body = pod(
        ["main", "proxy"], [status("main", terminated(0, "c1")), status("proxy", running("s1"))]
    )
    [stop] = stops(run(body, policy=policy))
    assert stop.argv[-2:] == ("http://127.0.0.1:9091/quitquitquit", "post")
    assert policy.on_primary_failure is OnPrimaryFailure.RESTART_TOGETHER


def test_a_termination_named_only_at_the_top_of_the_status_is_the_same_run() -> None:
    sidecar = status("proxy", terminated(0, "p1"))
    del sidecar["state"]["terminated"]["containerID"]  # kwok and some runtimes omit it here
    view = parse_pod(pod(["main", "proxy"], [status("main", terminated(0, "m")), sidecar]))
    run = view.status("proxy").termination_of("p1")
    assert run is not None and run.exit_code == 0


def test_a_pod_with_three_sidecars_gets_one_recheck() -> None:
    names = ["main", "a", "b", "c"]
    body = pod(
        names,
        [status("main", terminated(0, "m")), *(status(n, running(n)) for n in names[1:])],
        annotations=PRIMARY,
    )
    decision = run(body)
    assert len(stops(decision)) == 3
    assert [a for a in decision.actions if isinstance(a, Recheck)] == [Recheck(31.0)]


def _onfailure(main: dict[str, Any]) -> dict[str, Any]:
    return pod(
        ["main", "proxy"],
        [main, status("proxy", running("p1"))],
        annotations=PRIMARY,
        restart_policy="OnFailure",
    )


@pytest.mark.parametrize("keeps_phase", [True, False])
def test_a_primary_about_to_restart_after_exit_0_has_not_ended(keeps_phase: bool) -> None:
    """Under OnFailure the kubelet never restarts a container that exited 0 by itself; one it
    killed for a failed liveness (or startup) probe it restarts whatever the exit code, and a
    Waiting state is the kubelet saying it will start the container again. A primary that
    handled the probe's TERM and exited 0, waiting in back-off, has not succeeded: no phase, no
    stop. The controls: the same exit 0 as the container's final state succeeds, and a failed
    run waiting for its restart is a failure, as before."""
    about_to_restart = status(
        "main", waiting("CrashLoopBackOff"), last=terminated(0, "c1"), restarts=1
    )
    decision = _decide(_onfailure(about_to_restart), keeps_phase)
    assert [a for a in decision.actions if isinstance(a, Stop | Finish)] == []
    assert primaries_ended(parse_pod(_onfailure(about_to_restart)), ("main",)) is None
    done = _decide(_onfailure(status("main", terminated(0, "c2"), restarts=1)), keeps_phase)
    acted = [a for a in done.actions if isinstance(a, Stop | Finish)]
    assert acted and all(
        a.outcome is Outcome.SUCCESS if isinstance(a, Stop) else a.phase is Phase.SUCCEEDED
        for a in acted
    )
    failed = status("main", waiting("CrashLoopBackOff"), last=terminated(3, "c1"), restarts=1)
    ended = primaries_ended(parse_pod(_onfailure(failed)), ("main",))
    assert ended is not None and ended.outcome is Outcome.FAILURE


def _decide(body: dict[str, Any], keeps_phase: bool) -> Any:
    view = parse_pod(body)
    policy = resolve(view.labels, view.annotations, ()).policy
    return decide(
        view, policy, PodMemory(), Monotonic(100.0), CoreSettings(kubelet_keeps_phase=keeps_phase)
    )
