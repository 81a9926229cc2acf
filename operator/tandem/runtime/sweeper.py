"""The sweep, carried out: list what the core needs, let it choose, act, and report.

Policy-selected pods are swept by a Kopf timer on their SidecarPolicy (so Kopf's finalizer lands
on the policy, never on pods); annotation-only pods by one operator-level task
(`handlers.AnnotatedSweep`). The pods come from the watch (the reconciler keeps the views of
those `Decision.sweepable` names), not a list, so idle Job pods cost no API call. Jobs are listed
once per sweep, and only when some pod may need sweeping, instead of one GET per pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from tandem.core import PodView, PolicyError, PolicySource, WallTime, resolve
from tandem.core.model.names import PRIMARY_ANNOTATION
from tandem.core.model.once import OnceKey, Told, once_key, tell_once
from tandem.core.sweep import Found, JobState, SweepAction, SweepRules, select

from . import metrics
from .ports import SweepReads
from .reconciler import Reconciler

logger = logging.getLogger("tandem.sweeper")
_TOLD_REMEMBERED = 10_000
"""Once-keys the sweeper keeps (`Sweeper._tell_once`), the oldest pods' forgotten first."""


def job_state(job: Mapping[str, Any]) -> JobState:
    conditions = (job.get("status") or {}).get("conditions") or ()
    terminal = next(
        (
            c["type"]
            for c in conditions
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        ),
        None,
    )
    return JobState(str(job["metadata"]["uid"]), terminal)


def rules_from(spec: Mapping[str, Any], deletion_enabled: bool, defaults: SweepRules) -> SweepRules:
    raw = spec.get("sweep") or {}
    return dataclasses.replace(
        defaults,
        action=SweepAction(raw.get("action", defaults.action.value)),
        stuck_after=float(raw.get("stuckAfterSeconds", defaults.stuck_after)),
        # A policy may lower the operator's cap (--sweep-max-actions), never raise it: its author
        # is a namespace's user, the cap the cluster admin's.
        max_actions=min(
            int(raw.get("maxActionsPerSweep", defaults.max_actions)), defaults.max_actions
        ),
        allow_deleting_succeeded=bool(raw.get("allowDeletingSucceeded", False)),
        deletion_enabled=deletion_enabled,
    )


class NamespaceBudget:
    """At most LIMIT sweep actions (Terminate or Delete) in one namespace per WINDOW seconds, the
    operator's --sweep-max-actions per --sweep-interval: each SidecarPolicy sweeps on its own
    timer, so without it a namespace's N policies would act N times as often as one."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._spent: dict[str, tuple[float, int]] = {}

    def take(self, namespace: str) -> bool:
        """Spends one action of NAMESPACE's budget; False when none is left in this window."""
        now = self._clock()
        began, spent = self._spent.get(namespace, (now, 0))
        if now - began >= self.window:
            began, spent = now, 0
        if spent >= self.limit:
            return False
        self._spent[namespace] = (began, spent + 1)
        return True


@dataclasses.dataclass
class SweepResult:
    swept: int = 0
    skipped: int = 0
    at: str = ""
    round_end: str = ""
    """The namespace of the last pod acted on, where the next sweep's round begins after."""


class Sweeper:
    def __init__(
        self,
        reads: SweepReads,
        reconciler: Reconciler,
        defaults: SweepRules,
        budget: NamespaceBudget | None = None,
    ) -> None:
        self._reads = reads
        self._reconciler = reconciler
        self.defaults = defaults
        self.budget = budget or NamespaceBudget(defaults.max_actions, window=60.0)
        self._told: dict[str, frozenset[OnceKey]] = {}
        """By pod uid, the sweep's Events told once: the pod's memory is the reconciler's, and
        a pod the sweep skips may have none."""
        self._told_count = 0
        self._annotated_round_end = ""

    def _tell_once(self, uid: str, key: OnceKey) -> bool:
        """SweepSkipped (and a Report's PodSwept) is posted once per pod, run of its primaries
        and reason, not at every sweep. False: told already."""
        told = tell_once(self._told.get(uid, frozenset()), key)
        if told is None:
            return False
        # The pod told last goes to the back: past the cap, the pods told least recently are
        # forgotten, never the key just told.
        self._told.pop(uid, None)
        self._told[uid] = told
        self._told_count += 1
        while self._told_count > _TOLD_REMEMBERED and next(iter(self._told)) != uid:
            self._told_count -= len(self._told.pop(next(iter(self._told))))
        return True

    async def sweep_policy(self, namespace: str, name: str, spec: Mapping[str, Any]) -> SweepResult:
        """One sweep of the pods that the SidecarPolicy NAMESPACE/NAME selects."""
        pods = self._reconciler.sweepable(namespace)
        jobs = await self._jobs({namespace} if pods else set())
        sources = (PolicySource(name, dict(spec)),)
        rules = rules_from(spec, self.defaults.deletion_enabled, self.defaults)
        return await self._sweep(pods, jobs, lambda _: sources, rules, by_policy=True)

    async def sweep_annotated(
        self, policies: Callable[[str], Collection[PolicySource]]
    ) -> SweepResult:
        """One sweep of annotation-only pods: opted in by annotation, selected by no policy."""
        annotated = [v for v in self._reconciler.sweepable() if PRIMARY_ANNOTATION in v.annotations]
        jobs = await self._jobs({v.namespace for v in annotated})
        result = await self._sweep(
            annotated,
            jobs,
            lambda ns: tuple(policies(ns)),
            self.defaults,
            by_policy=False,
            after=self._annotated_round_end,
        )
        self._annotated_round_end = result.round_end or self._annotated_round_end
        return result

    async def _jobs(self, namespaces: Iterable[str]) -> dict[str, JobState]:
        jobs: dict[str, JobState] = {}
        for namespace in sorted(namespaces):
            states = await asyncio.to_thread(self._reads.jobs, namespace, job_state)
            jobs.update((state.uid, state) for state in states)
        return jobs

    async def _sweep(
        self,
        pods: list[PodView],
        jobs: Mapping[str, JobState],
        sources_in: Callable[[str], tuple[PolicySource, ...]],
        rules: SweepRules,
        *,
        by_policy: bool,
        after: str = "",
    ) -> SweepResult:
        """Resolves each pod's policy (keeping pods of a policy, or annotation-only pods, as
        BY_POLICY says), lets the core select (its round of namespaces beginning AFTER), and
        acts."""
        sources: dict[str, tuple[PolicySource, ...]] = {}
        candidates = []
        for view in pods:
            in_namespace = sources_in(view.namespace)
            try:
                policy = resolve(view.labels, view.annotations, in_namespace).policy
            except PolicyError:
                continue  # Its pod Events already say why.
            if policy is None or (policy.policy_name is not None) is not by_policy:
                continue
            candidates.append((view, policy))
            sources[view.uid] = in_namespace
        last_acted, memories = self._reconciler.last_acted(), self._reconciler.memories()
        found = select(
            candidates,
            jobs,
            WallTime(time.time()),
            rules,
            last_acted=last_acted,
            memories=memories,
            after=after,
        )
        return await self._act(found, sources)

    async def _act(
        self,
        found: list[Found],
        sources: dict[str, tuple[PolicySource, ...]],
    ) -> SweepResult:
        result = SweepResult(at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for item in found:
            view = item.view
            if item.action is None:
                result.skipped += 1
                if self._tell_once(
                    view.uid, once_key(Told.SWEEP_SKIPPED, item.attempt_key, item.skipped)
                ):
                    self._post(item)
                continue
            if item.action is SweepAction.REPORT and not self._tell_once(
                view.uid, once_key(Told.SWEEP_REPORT, item.attempt_key)
            ):
                continue  # A dry run reports each pod once, not at every sweep.
            if item.action is not SweepAction.REPORT and not self.budget.take(view.namespace):
                result.skipped += 1  # The namespace's budget is spent: the next window acts.
                continue
            if item.action is not SweepAction.REPORT:
                result.swept += 1
                result.round_end = view.namespace  # select lists those acted on in turn order
            metrics.SWEPT.labels(mode=item.action.value).inc()
            self._post(item)
            if item.action is SweepAction.TERMINATE:
                await self._reconciler.restart(view, sources[view.uid], item.forget)
            elif item.action is SweepAction.DELETE:
                await asyncio.to_thread(
                    self._reads.delete_pod,
                    view.namespace,
                    view.name,
                    view.grace_period,
                    view.uid,
                    view.resource_version,
                )
        return result

    def _post(self, item: Found) -> None:
        report = item.report
        logger.info("sweep %s/%s: %s", item.view.namespace, item.view.name, report.message)
        self._reconciler.publisher.publish(item.view, report)
