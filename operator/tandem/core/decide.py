"""The decision core: pod in, actions out. Pure; the runtime carries out what it returns.

Level-based: `decide` looks only at the pod as it is now and at what Tandem remembers having done,
so the same event twice, events out of order, or a restart of the operator change nothing harmful.
"""

from __future__ import annotations

import dataclasses

from . import hints
from .actions import Action, Outcome, Recheck, Report, Stop
from .delivery import exec_argv
from .memory import PodMemory, SidecarRecord
from .names import EventType, Reason
from .policy import OnPrimaryFailure, Policy
from .view import PodView, Termination

RECHECK_SLACK = 1.0
"""Seconds after the grace period at which a silent sidecar is looked at again."""


@dataclasses.dataclass(frozen=True)
class PrimariesEnded:
    key: str
    """Identifies this ended run of the primaries (their container IDs)."""
    outcome: Outcome
    summary: str


@dataclasses.dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    memory: PodMemory
    policy_name: str | None = None
    """The SidecarPolicy that applied, if any: its status counts what the actions report."""


def _ended_run(view: PodView, name: str) -> Termination | None:
    status = view.status(name)
    if status.state == "terminated":
        return status.terminated
    # Under OnFailure a failed primary waits in back-off before its restart: that run has ended.
    if status.state == "waiting" and view.restart_policy == "OnFailure":
        return status.last_terminated
    return None


def primaries_ended(view: PodView, primaries: tuple[str, ...]) -> PrimariesEnded | None:
    """The primaries' outcome once every one of them has ended; None while any still runs."""
    runs = [(name, _ended_run(view, name)) for name in primaries]
    if not runs or any(run is None for _, run in runs):
        return None
    ended = [(name, run) for name, run in runs if run is not None]
    return PrimariesEnded(
        key=",".join(f"{name}={run.container_id or run.finished_at}" for name, run in ended),
        outcome=Outcome.SUCCESS if all(r.exit_code == 0 for _, r in ended) else Outcome.FAILURE,
        summary=", ".join(
            f"{n} exited {r.exit_code} ({r.reason or 'no reason'})" for n, r in ended
        ),
    )


def sidecars_of(view: PodView, policy: Policy) -> tuple[str, ...]:
    chosen = policy.sidecars if policy.sidecars is not None else view.containers
    return tuple(c for c in chosen if c not in policy.primaries)


def unknown_containers(view: PodView, policy: Policy) -> tuple[str, ...]:
    named = (*policy.primaries, *(policy.sidecars or ()))
    return tuple(n for n in dict.fromkeys(named) if n not in view.containers)


class _Builder:
    """Collects actions and the updated memory while `decide` walks the sidecars."""

    def __init__(self, memory: PodMemory) -> None:
        self.actions: list[Action] = []
        self.sidecars = dict(memory.sidecars)
        self.reported = set(memory.reported)
        self.gave_up = memory.gave_up

    def once(self, key: str, report: Report) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.actions.append(report)

    def build(self, policy: Policy | None = None) -> Decision:
        memory = PodMemory(self.sidecars, frozenset(self.reported), self.gave_up)
        return Decision(tuple(self.actions), memory, policy.policy_name if policy else None)


def _verify(out: _Builder, view: PodView, name: str, record: SidecarRecord) -> None:
    """Reports how a stopped sidecar exited, once its run shows up as terminated."""
    run = view.status(name).termination_of(record.container_id)
    if record.verified or run is None:
        return
    out.sidecars[name] = dataclasses.replace(record, verified=True)
    how = f"{name} exited {run.exit_code} after {record.action.describe()}"
    if record.outcome is Outcome.FAILURE and view.restart_policy == "Never":
        # The pod fails with its primaries whatever the sidecar exits with.
        out.actions.append(
            Report(
                EventType.NORMAL, Reason.SIDECAR_STOPPED, f"{how}; the pod fails with its primaries"
            )
        )
    elif record.outcome.matches(run.exit_code):
        out.actions.append(
            Report(
                EventType.NORMAL,
                Reason.SIDECAR_STOPPED,
                f"{how}, as expected when the primaries' outcome is "
                f"{record.outcome} (expected exit {record.outcome.expected_exit})",
            )
        )
    else:
        fix = hints.mismatch_fix(run.exit_code, record.action, record.outcome)
        out.actions.append(
            Report(
                EventType.WARNING,
                Reason.SIDECAR_EXIT_MISMATCH,
                f"{how}; expected exit {record.outcome.expected_exit} because the "
                f"primaries' outcome is {record.outcome}. Fix: {fix}",
                on_job=True,
                tally="mismatched",
            )
        )


def _stop_or_wait(
    out: _Builder, view: PodView, policy: Policy, name: str, *, ended: PrimariesEnded, now: float
) -> None:
    status, record = view.status(name), out.sidecars.get(name)
    if status.state != "running":
        return
    same_attempt = record is not None and record.attempt_key == ended.key
    if (
        record is not None
        and same_attempt
        and (record.container_id == status.container_id or ended.outcome is Outcome.FAILURE)
    ):
        # Stopped already: this run, or on failure a run the kubelet restarted in tandem.
        if (
            record.container_id == status.container_id
            and not record.overdue_reported
            and now - record.acted_at >= policy.grace_seconds
        ):
            out.sidecars[name] = dataclasses.replace(record, overdue_reported=True)
            out.actions.append(
                Report(
                    EventType.WARNING,
                    Reason.SIDECAR_STOP_FAILED,
                    f"{name} still runs {policy.grace_seconds:g}s after "
                    f"{record.action.describe()}. Fix: {hints.UNSTOPPABLE_FIXES}",
                    on_job=True,
                )
            )
        return
    attempts = record.attempts + 1 if record is not None and same_attempt else 1
    if record is not None and attempts > policy.max_attempts:
        out.gave_up = True
        out.once(
            f"loop:{name}",
            Report(
                EventType.WARNING,
                Reason.SIDECAR_STOP_LOOP,
                f"{name} was stopped {record.attempts} times and restarted each time; Tandem stops "
                f"acting on this pod. Fix: {hints.mismatch_fix(1, record.action, ended.outcome)}",
                on_job=True,
            ),
        )
        return
    actions = policy.actions_for(name)
    action = actions.on_success if ended.outcome is Outcome.SUCCESS else actions.on_failure
    out.sidecars[name] = SidecarRecord(
        ended.key, status.container_id, ended.outcome, action, now, attempts
    )
    out.actions.append(
        Stop(
            name,
            status.container_id,
            action,
            ended.outcome,
            attempts,
            exec_argv(action, view.share_process_namespace),
        )
    )
    out.actions.append(Recheck(policy.grace_seconds + RECHECK_SLACK))


def decide(view: PodView, policy: Policy | None, memory: PodMemory, now: float) -> Decision:
    """What to do for VIEW under POLICY, given MEMORY of earlier decisions, at time NOW."""
    out = _Builder(memory)
    if policy is None:
        return out.build()
    if missing := unknown_containers(view, policy):
        out.once(
            "unknown",
            Report(
                EventType.WARNING,
                Reason.UNKNOWN_CONTAINER,
                f"{policy.source} names {', '.join(missing)}, but the pod's regular containers are "
                f"{', '.join(view.containers) or 'none'} (init containers and native sidecars are "
                "never managed). Fix the container names; Tandem leaves this pod alone until then.",
            ),
        )
        return out.build(policy)
    for name in sidecars_of(view, policy):
        if (record := out.sidecars.get(name)) is not None:
            _verify(out, view, name, record)
    ended = primaries_ended(view, policy.primaries)
    if ended is None or view.terminal or view.deleting or out.gave_up:
        return out.build(policy)
    if (
        ended.outcome is Outcome.FAILURE
        and view.restart_policy == "OnFailure"
        and policy.on_primary_failure is OnPrimaryFailure.KEEP
    ):
        return out.build(policy)
    before = len(out.actions)
    for name in sidecars_of(view, policy):
        _stop_or_wait(out, view, policy, name, ended=ended, now=now)
    stops = [a for a in out.actions[before:] if isinstance(a, Stop)]
    if stops:
        out.once(
            f"ended:{ended.key}",
            Report(
                EventType.NORMAL,
                Reason.PRIMARIES_FINISHED,
                f"primaries ended ({ended.summary}): outcome {ended.outcome}; stopping "
                + ", ".join(f"{s.sidecar} with {s.action.describe()}" for s in stops)
                + f" ({policy.source})",
                on_job=True,
                tally="succeeded" if ended.outcome is Outcome.SUCCESS else "failed",
            ),
        )
    return out.build(policy)
