"""The sweep: which Job pods are stuck or orphaned, and what to do about each. Pure.

Stuck: a managed pod whose primaries all ended more than `stuck_after` ago and which is still not
terminal. Orphaned: a managed pod whose Job is gone, or whose Job already has a terminal
condition while the pod runs. A pod whose primary still runs is never touched, however old, nor is
one that no batch/v1 Job controls (`managed_job_pod`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import deque
from collections.abc import Iterable, Mapping
from enum import StrEnum

from .finish.decide import ended_run, managed_job_pod, primaries_ended
from .finish.decision import MAX_RERUNS, PodMemory
from .finish.routes import HELPER_NAME
from .model.actions import Outcome, Report
from .model.clocks import WallTime
from .model.names import EventType, Reason
from .model.view import PodView
from .policy.policy import Policy


class SweepAction(StrEnum):
    TERMINATE = "Terminate"
    """Run the sidecar stop again, the full ladder; at most MAX_RERUNS times for a run."""
    DELETE = "Delete"
    """Delete the pod with its grace period."""
    REPORT = "Report"
    """Only post Events: a dry run."""


@dataclasses.dataclass(frozen=True)
class SweepRules:
    action: SweepAction = SweepAction.TERMINATE
    stuck_after: float = 600.0
    max_actions: int = 20
    """Actions per sweep, so thousands of stuck pods are cleaned steadily, not all at once;
    shared round-robin between namespaces."""
    allow_deleting_succeeded: bool = False
    deletion_enabled: bool = False
    """The operator's own switch (and RBAC) for deleting pods."""


@dataclasses.dataclass(frozen=True)
class JobState:
    uid: str
    terminal: str | None
    """`Complete` or `Failed` once the Job has that condition."""


@dataclasses.dataclass(frozen=True)
class Found:
    view: PodView
    why: str
    """`stuck` or `orphaned`, with details, for the Event."""
    action: SweepAction | None
    """None: skipped, and SKIPPED says why."""
    skipped: str = ""
    attempt_key: str = ""
    """The ended run of the primaries that a Terminate re-runs the stop for."""
    rerun: int = 0
    """Which re-run of that run a Terminate is, from 1."""

    @property
    def report(self) -> Report:
        """PodSwept (on the Job too) or SweepSkipped, with the diagnosis and the action."""
        if self.action is None:
            return Report(
                EventType.NORMAL, Reason.SWEEP_SKIPPED, f"{self.why}; not swept: {self.skipped}"
            )
        note = {
            SweepAction.REPORT: " (report only: nothing changed)",
            SweepAction.TERMINATE: f" (re-run {self.rerun} of at most {MAX_RERUNS})",
        }.get(self.action, "")
        return Report(
            EventType.NORMAL,
            Reason.POD_SWEPT,
            f"{self.why}; sweep action {self.action.value}{note}",
            on_job=True,
        )

    def forget(self, memory: PodMemory) -> PodMemory:
        """The pod's MEMORY as a Terminate leaves it, before the pod is handled again."""
        return memory.rerun(self.attempt_key, helper_added=HELPER_NAME in self.view.ephemeral_specs)


def _seconds(stamp: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class _Diagnosis:
    message: str
    job_finished_or_gone: bool


def _diagnose(
    view: PodView, policy: Policy, jobs: Mapping[str, JobState], now: WallTime, rules: SweepRules
) -> _Diagnosis | None:
    if view.terminal or view.deleting or managed_job_pod(view) or not view.job_uid:
        # Not a Job's pod: a forged job-name label, another controller, a Job deleted with
        # --cascade=orphan (the garbage collector drops the ownerReference). Never touched.
        # (The gate requires a job_uid; the last test says so to the type checker.)
        return None
    ended = primaries_ended(view, policy.primaries)
    if ended is None:
        return None  # A primary still runs: never touched.
    job = jobs.get(view.job_uid)
    if job is None:
        return _Diagnosis(f"orphaned: its Job {view.job_name} no longer exists", True)
    if job.terminal:
        return _Diagnosis(f"orphaned: its Job {view.job_name} is already {job.terminal}", True)
    runs = [ended_run(view, name) for name in policy.primaries]
    last = max((t for run in runs if run and (t := _seconds(run.finished_at))), default=None)
    if last is not None and now - last >= rules.stuck_after:
        return _Diagnosis(
            f"stuck: its primaries ended {now - last:.0f}s ago ({ended.summary}) "
            f"and it is still {view.phase}",
            False,
        )
    return None


def _action_for(
    rules: SweepRules, succeeded: bool, diagnosis: _Diagnosis
) -> tuple[SweepAction | None, str]:
    if rules.action is not SweepAction.DELETE:
        return rules.action, ""
    if not rules.deletion_enabled:
        return None, (
            "the policy asks for Delete, but the operator runs without "
            "--sweep-allow-delete (and the RBAC rule to delete pods)"
        )
    if succeeded and not diagnosis.job_finished_or_gone and not rules.allow_deleting_succeeded:
        return None, (
            "its primaries succeeded and its Job is not finished: deleting the pod "
            "would make the Job run the work again (set allowDeletingSucceeded to allow)"
        )
    return SweepAction.DELETE, ""


def select(
    candidates: Iterable[tuple[PodView, Policy]],
    jobs: Mapping[str, JobState],
    now: WallTime,
    rules: SweepRules,
    *,
    last_acted: Mapping[str, WallTime] | None = None,
    memories: Mapping[str, PodMemory] | None = None,
    after: str = "",
) -> list[Found]:
    """The pods to sweep: those acted on first, then the rest in name order. LAST_ACTED: when
    Tandem last stopped a sidecar of each pod (by uid); MEMORIES: what it remembers of each (its
    loop guard and re-runs). At most RULES.max_actions pods are acted on (see `_share`); the
    eligible ones past the cap are returned as skipped, with the cap as the reason (the next
    sweep gets them). AFTER: the namespace where the previous sweep's round ended."""
    found: list[Found] = []
    for view, policy in sorted(candidates, key=lambda c: (c[0].namespace, c[0].name)):
        diagnosis = _diagnose(view, policy, jobs, now, rules)
        if diagnosis is None:
            continue
        acted_at = (last_acted or {}).get(view.uid)
        if (
            rules.action is SweepAction.TERMINATE
            and acted_at
            and now - acted_at < rules.stuck_after
        ):
            continue  # Tandem's last stop is recent: at most one Terminate per stuckAfter.
        ended = primaries_ended(view, policy.primaries)
        succeeded = ended is not None and ended.outcome is Outcome.SUCCESS
        action, skipped = _action_for(rules, succeeded, diagnosis)
        key = ended.key if ended is not None else ""
        memory = (memories or {}).get(view.uid, PodMemory())
        if action is SweepAction.TERMINATE and (refused := memory.rerun_refused(key)):
            action, skipped = None, refused
        rerun = memory.reruns_of(key) + 1
        found.append(Found(view, diagnosis.message, action, skipped, key, rerun))
    return _share(found, rules.max_actions, after)


_CAPPED = (SweepAction.TERMINATE, SweepAction.DELETE)


def _share(found: list[Found], cap: int, after: str) -> list[Found]:
    """The CAP actions shared round-robin between namespaces, one pod of each in turn (by name
    within one), so that one namespace's stuck pods cannot take the whole cap at every sweep.
    The round begins with the first namespace after AFTER, where the previous one ended: with
    more namespaces than the cap, each still gets its turn over the sweeps. Returns those acted
    on, in the round's order, then the rest."""
    queues: dict[str, deque[Found]] = {}
    for item in found:
        if item.action in _CAPPED:
            queues.setdefault(item.view.namespace, deque()).append(item)
    turn = deque(queues[ns] for ns in sorted(queues, key=lambda ns: (ns <= after, ns)))
    acted: list[Found] = []
    while turn and len(acted) < cap:
        queue = turn.popleft()
        acted.append(queue.popleft())
        if queue:
            turn.append(queue)
    chosen = {id(item) for item in acted}
    over = f"the cap of {cap} actions per sweep"
    return acted + [
        dataclasses.replace(item, action=None, skipped=over) if item.action in _CAPPED else item
        for item in found
        if id(item) not in chosen
    ]
