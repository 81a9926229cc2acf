"""Properties of `decide` over random sequences of container statuses, restarts included."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.core import (
    CoreSettings,
    Finish,
    Monotonic,
    Phase,
    PodMemory,
    Stop,
    WallTime,
    decide,
    parse_pod,
    resolve,
)
from tandem.core.sweep import SweepAction, SweepRules, select

from .pods import pod, running, status, terminated, waiting

PRIMARIES = ["main", "aux"]
SIDECARS = ["proxy", "mesh"]
NATIVE = {"name": "native", "image": "x", "restartPolicy": "Always"}


# The strategies are built once: one built per draw is validated per draw, and that, not
# `decide`, was most of this suite's time.
_KIND = st.sampled_from(["running", "terminated", "waiting", "absent"])
_RUN_NO = st.integers(0, 3)
_LAST_CODE = st.none() | st.sampled_from([0, 1, 137, 143])
_CODE = st.sampled_from([0, 1, 3, 137, 143])
_REASON = st.sampled_from(["", "OOMKilled", "ContainerCannotRun", "Error"])
_ONE_OR_TWO = st.integers(1, 2)
_RESTART_POLICY = st.sampled_from(["Never", "OnFailure"])
_PHASE = st.sampled_from(["Pending", "Running", "Running", "Succeeded", "Failed"])
_IMAGE = st.sampled_from(["busybox", "docker.io/library/haproxy:2.8"])
_EVENTS = st.integers(1, 12)


def container_state(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(_KIND)
    run_no = draw(_RUN_NO)
    cid = f"{name}-{run_no}"
    last_code = draw(_LAST_CODE)
    last = None if last_code is None else terminated(last_code, f"{name}-prev")
    if kind == "running":
        return status(name, running(cid), last=last, restarts=run_no)
    if kind == "terminated":
        code = draw(_CODE)
        reason = draw(_REASON)
        return status(name, terminated(code, cid, reason), last=last, restarts=run_no)
    if kind == "waiting":
        return status(name, waiting("CrashLoopBackOff"), last=last, restarts=run_no)
    return {}


@st.composite
def pod_sequence(draw: st.DrawFn) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the node keeps an API-set phase, and the pod's bodies as the watch shows them."""
    primaries = PRIMARIES[: draw(_ONE_OR_TWO)]
    sidecars = SIDECARS[: draw(_ONE_OR_TWO)]
    managed = draw(st.booleans())
    annotations = {"tandem.dev/primary": ",".join(primaries)} if managed else {}
    restart_policy = draw(_RESTART_POLICY)
    share_pid = draw(st.booleans())
    images = {n: draw(_IMAGE) for n in sidecars}
    sequence: list[dict[str, Any]] = []
    for _ in range(draw(_EVENTS)):
        statuses = [container_state(draw, n) for n in primaries + sidecars]
        sequence.append(
            pod(
                primaries + sidecars,
                [s for s in statuses if s],
                annotations=annotations,
                restart_policy=restart_policy,
                share_pid=share_pid,
                init=[NATIVE],
                phase=draw(_PHASE),
                images=images,
                resource_version=str(len(sequence) + 1),
            )
        )
    return draw(st.booleans()), sequence


def _primaries_all_exited_0(body: dict[str, Any]) -> bool:
    """Independently of the core: every primary's last run ended, with exit code 0."""
    view = parse_pod(body)
    for name in view.annotations.get("tandem.dev/primary", "").split(","):
        state = view.status(name)
        run = state.terminated if state.state == "terminated" else state.last_terminated
        if _primary_still_runs(body) or run is None or run.exit_code != 0:
            return False
    return True


def _primary_still_runs(body: dict[str, Any]) -> bool:
    """An independent statement of 'not finished': any primary not terminated, except a failed
    one waiting for its restart under OnFailure. One that exited 0 and waits all the same is
    about to run again: the kubelet restarts an exit 0 under OnFailure only after killing it
    (a failed liveness probe), and Waiting says it will start the container again."""
    view = parse_pod(body)
    primaries = view.annotations.get("tandem.dev/primary", "").split(",")
    for name in primaries:
        state = view.status(name)
        if state.state == "terminated":
            continue
        if (
            state.state == "waiting"
            and view.restart_policy == "OnFailure"
            and state.last_terminated is not None
            and state.last_terminated.exit_code != 0
        ):
            continue
        return True
    return False


# 10,000 generated sequences in CI (CI=true), 400 on a developer's machine.
EXAMPLES = 10_000 if os.environ.get("CI") == "true" else 400


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod_sequence())
def test_invariants_hold_over_any_sequence(generated: tuple[bool, list[dict[str, Any]]]) -> None:
    keeps_phase, sequence = generated
    memory, now = PodMemory(), 0.0
    stops_per_run: Counter[tuple[str, str]] = Counter()
    for body in sequence:
        view = parse_pod(body)
        policy = resolve(view.labels, view.annotations, []).policy
        decision = decide(
            view, policy, memory, Monotonic(now), CoreSettings(kubelet_keeps_phase=keeps_phase)
        )
        memory, now = decision.memory, now + 7.0
        stops = [a for a in decision.actions if isinstance(a, Stop)]
        for finish in (a for a in decision.actions if isinstance(a, Finish)):
            assert keeps_phase, "wrote a phase on a node that does not keep it"
            assert not _primary_still_runs(body) and not view.terminal
            assert (finish.uid, finish.resource_version) == (view.uid, view.resource_version)
            if finish.phase is Phase.SUCCEEDED:
                assert _primaries_all_exited_0(body), "Succeeded while a primary ran or failed"
        if policy is None:
            assert decision.actions == ()
            assert decision.sweepable == (
                not view.terminal and any(s.state == "terminated" for s in view.statuses.values())
            )
            continue
        # The runtime keeps bodies only of sweepable pods, and the sweep sees nothing else: an
        # orphan with a dry-run rule is the widest net the sweep has.
        widest = select([(view, policy)], {}, WallTime(1e10), SweepRules(action=SweepAction.REPORT))
        assert decision.sweepable >= bool(widest), "the sweep would miss a pod it must see"
        if stops:
            assert not _primary_still_runs(body), "acted while a primary runs"
            assert not view.terminal
        for stop in stops:
            assert stop.sidecar in SIDECARS, "acted on a primary or an init container"
            assert view.status(stop.sidecar).state == "running"
            assert stop.container_id == view.status(stop.sidecar).container_id
            stops_per_run[(stop.sidecar, stop.container_id)] += 1
            assert stop.attempt <= policy.max_attempts
    max_attempts = policy.max_attempts if policy is not None else 0
    assert all(count <= max_attempts for count in stops_per_run.values())
