"""The decision core: pod in, actions out. Pure; the runtime carries out what it returns.

Level-based: `decide` looks only at the pod as it is now and at what Tandem remembers having done,
so the same event twice, events out of order, or a restart of the operator change nothing harmful.
"""

from __future__ import annotations

import dataclasses

from .actions import Outcome, Report, Stop, Tally
from .builder import Builder, Decision
from .clocks import Monotonic
from .escalate import Context, stop_or_wait
from .memory import PodMemory
from .names import EventType, Reason
from .policy import OnPrimaryFailure, Policy
from .verify import verify
from .view import PodView, Termination

__all__ = ["Decision", "PrimariesEnded", "decide", "primaries_ended", "sidecars_of"]


@dataclasses.dataclass(frozen=True)
class PrimariesEnded:
    key: str
    """Identifies this ended run of the primaries (their container IDs)."""
    outcome: Outcome
    summary: str


def ended_run(view: PodView, name: str) -> Termination | None:
    status = view.status(name)
    if status.state == "terminated":
        return status.terminated
    # Under OnFailure a failed primary waits in back-off before its restart: that run has ended.
    if status.state == "waiting" and view.restart_policy == "OnFailure":
        return status.last_terminated
    return None


def primaries_ended(view: PodView, primaries: tuple[str, ...]) -> PrimariesEnded | None:
    """The primaries' outcome once every one of them has ended; None while any still runs."""
    runs = [(name, ended_run(view, name)) for name in primaries]
    ended = [(name, run) for name, run in runs if run is not None]
    if not runs or len(ended) < len(runs):
        return None
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


def may_be_selected_later(view: PodView) -> bool:
    """Without a usable policy the primaries are unknown, and a SidecarPolicy created (or fixed)
    later brings no pod event. So the sweep keeps any running pod in which some container ended:
    its own policy resolution decides."""
    return not (view.terminal or view.deleting) and any(
        status.state == "terminated" for status in view.statuses.values()
    )


def unknown_containers(view: PodView, policy: Policy) -> tuple[str, ...]:
    named = (*policy.primaries, *(policy.sidecars or ()))
    return tuple(n for n in dict.fromkeys(named) if n not in view.containers)


def decide(
    view: PodView,
    policy: Policy | None,
    memory: PodMemory,
    now: Monotonic,
    *,
    helper_enabled: bool = False,
) -> Decision:
    """What to do for VIEW under POLICY, given MEMORY of earlier decisions, at time NOW.

    HELPER_ENABLED: the operator may add its ephemeral helper to pods (a setting).
    """
    out = Builder(memory)
    if policy is None:
        out.sweepable = may_be_selected_later(view)
        return out.build()
    if missing := unknown_containers(view, policy):
        out.sweepable = may_be_selected_later(view)
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
        if (record := out.memory.sidecars.get(name)) is not None:
            verify(out, view, name, record)
    ended = primaries_ended(view, policy.primaries)
    out.sweepable = ended is not None and not view.terminal and not view.deleting
    if ended is None or view.terminal or view.deleting or out.memory.gave_up:
        return out.build(policy)
    if (
        ended.outcome is Outcome.FAILURE
        and view.restart_policy == "OnFailure"
        and policy.on_primary_failure is OnPrimaryFailure.KEEP
    ):
        return out.build(policy)
    before = len(out.actions)
    ctx = Context(view, policy, ended.key, ended.outcome, now, helper_enabled)
    for name in sidecars_of(view, policy):
        stop_or_wait(out, ctx, name)
    stops = [a for a in out.actions[before:] if isinstance(a, Stop) and a.step == 0]
    if stops:
        out.once(
            f"ended:{ended.key}",
            Report(
                EventType.NORMAL,
                Reason.PRIMARIES_FINISHED,
                f"primaries ended ({ended.summary}): outcome {ended.outcome}; stopping "
                + ", ".join(f"{s.sidecar} with {s.action.describe()} via {s.path}" for s in stops)
                + f" ({policy.source})",
                on_job=True,
                tally=Tally.SUCCEEDED if ended.outcome is Outcome.SUCCESS else Tally.FAILED,
            ),
        )
    return out.build(policy)
