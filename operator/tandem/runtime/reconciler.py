"""Runs the decision core for one pod and carries out its actions.

It keeps what the core needs between events (memory per pod, the newest view for re-checks and the
sweep, one pending re-check per pod) and publishes the core's Reports. It decides nothing itself.
It keeps no pod body: a parsed view is a fraction of one, and a burst keeps thousands.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from tandem.core import (
    Action,
    AddHelper,
    CoreSettings,
    ExecResult,
    Finish,
    Learned,
    Monotonic,
    PodMemory,
    PodView,
    PolicySource,
    Recheck,
    Report,
    Stop,
    WallTime,
    handle,
    learn,
    parse_pod,
)

from . import metrics
from .events import PolicyKey, Publisher
from .stopper import Stopper

logger = logging.getLogger("tandem.reconciler")


def _now() -> Monotonic:
    return Monotonic(time.monotonic())


def _observe_action(path: str, result: str, seconds: float) -> None:
    metrics.ACTIONS.labels(path=path, result=result).inc()
    metrics.ACTION_DURATION.labels(path=path).observe(seconds)


class Reconciler:
    def __init__(
        self,
        stopper: Stopper,
        publisher: Publisher | None = None,
        kubelets_keep_phase: bool = True,
        watched: tuple[str, ...] = (),
        pods_without_job: bool = False,
    ) -> None:
        self._stopper = stopper
        # KUBELETS_KEEP_PHASE: every kubelet that Tandem's Kubernetes (1.29+) allows, v1.26+,
        # keeps a terminal phase written through the API (v1.23+). Off only in tests of the exec
        # road.
        self._settings = CoreSettings(
            helper_image=stopper.image,
            kubelet_keeps_phase=kubelets_keep_phase,
            exec_actions=stopper.exec_actions,
            exec_stops=stopper.exec_stops,
            watched=watched,
            pods_without_job=pods_without_job,
        )
        self.publisher = publisher or Publisher()
        self._memory: dict[str, PodMemory] = {}
        self._latest: dict[str, tuple[PodView, tuple[PolicySource, ...]]] = {}
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._rechecks: dict[str, tuple[Monotonic, asyncio.Task[None]]] = {}
        """At most one pending re-check per pod (by uid): the earliest asked for."""
        self._sweepable: set[str] = set()
        self._carrying: dict[str, asyncio.Task[None]] = {}
        """Per pod (by uid), the newest of its actions under way that no caller awaits (`react`);
        each waits for the one before."""

    def take_tally(self, policy: PolicyKey) -> collections.Counter[str]:
        """SidecarPolicy POLICY's counts since the last take, for its status."""
        return self.publisher.tallies.take(policy)

    def last_acted(self) -> dict[str, WallTime]:
        """When Tandem last stopped a sidecar of each pod or wrote its phase, on the wall clock
        (the sweep's): a pod it has just finished is the kubelet's to stop, not the sweep's."""
        offset = time.time() - time.monotonic()
        acted = {
            uid: [r.acted_at for r in memory.sidecars.values()]
            + ([memory.finished_at] if memory.finished_at is not None else [])
            for uid, memory in self._memory.items()
        }
        return {uid: WallTime(max(times) + offset) for uid, times in acted.items() if times}

    def memories(self) -> Mapping[str, PodMemory]:
        """What Tandem remembers of each pod (by uid), read-only: the sweep's loop guard."""
        return types.MappingProxyType(self._memory)

    @property
    def remembered(self) -> int:
        return len(self._latest)

    def gone(self, uid: str) -> None:
        """The pod was deleted: forgotten once the actions under way for it are carried out, so
        that an event decided after them cannot bring it back."""

        async def forget() -> None:
            self.forget(uid)

        if not self._in_turn(uid, forget):
            self.forget(uid)

    def forget(self, uid: str) -> None:
        for table in (self._memory, self._latest, self._locks):
            table.pop(uid, None)
        if (pending := self._rechecks.pop(uid, None)) is not None:
            pending[1].cancel()
        self._sweepable.discard(uid)

    def sweepable(self, namespace: str | None = None) -> list[PodView]:
        """The newest views of the pods the sweep may act on (`Decision.sweepable`), in NAMESPACE
        or all. The watch keeps them current, as an informer's cache would: sweeps
        list no pods, so idle Job pods cost no API call and no CPU between events."""
        views = (self._latest[uid][0] for uid in self._sweepable if uid in self._latest)
        return [v for v in views if namespace is None or v.namespace == namespace]

    async def restart(
        self,
        view: PodView,
        candidates: Iterable[PolicySource],
        forget: Callable[[PodMemory], PodMemory],
    ) -> None:
        """Handles the pod afresh with its memory as FORGET leaves it: the sweeper's Terminate,
        which runs the whole stop (ladder included) again (`sweep.Found.forget`). From the pod's
        newest view, and not at all if the sweep may no longer act on it: an event since the
        sweep read VIEW (its end, say) must not be undone by the older view."""
        newest = self._latest.get(view.uid)
        if newest is None or view.uid not in self._sweepable:
            return
        async with self._locks[view.uid]:
            self._memory[view.uid] = forget(self._memory.get(view.uid, PodMemory()))
        await self._again(view.uid, candidates)

    async def reconcile(
        self, body: Mapping[str, Any], candidates: Iterable[PolicySource], received: Monotonic
    ) -> None:
        """Handles one watch event for a pod, and returns when its actions are carried out.
        RECEIVED is when the event reached the operator."""
        await self._reconcile(parse_pod(body), candidates, received)

    async def _reconcile(
        self, view: PodView, candidates: Iterable[PolicySource], received: Monotonic
    ) -> None:
        if (decided := await self._decide(view, candidates)) is not None:
            await self._carry_out(*decided, received)

    async def react(
        self, body: Mapping[str, Any], candidates: Iterable[PolicySource], received: Monotonic
    ) -> None:
        """Handles one watch event as `reconcile` does, but returns once decided: the actions
        run as a task that holds the pod's parsed view, not its body. A burst of Jobs ending at
        once queues thousands of stops; kopf then lets go of each event at once, instead of
        keeping every body until its pod's turn comes.

        A pod's events are still handled one after the other, as kopf would: an event that comes
        while the pod's actions are under way is decided after them, from the memory they leave
        (a phase write's watch event must not find the write still unrecorded)."""
        view, candidates = parse_pod(body), tuple(candidates)
        if self._in_turn(view.uid, lambda: self._reconcile(view, candidates, received)):
            return
        if (decided := await self._decide(view, candidates)) is not None:
            self._chain(view.uid, self._carry_out(*decided, received))

    def _chain(self, uid: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._carrying[uid] = task
        task.add_done_callback(functools.partial(self._carried, uid))

    def _in_turn(self, uid: str, then: Callable[[], Awaitable[None]]) -> bool:
        """Chains THEN after the pod's actions under way, if any are; False if none are."""
        previous = self._carrying.get(uid)
        if previous is None or previous.done():
            return False
        self._chain(uid, self._after(previous, then))
        return True

    @staticmethod
    async def _after(previous: asyncio.Task[None], then: Callable[[], Awaitable[None]]) -> None:
        await asyncio.wait([previous])  # Its own failure is logged by its own callback.
        await then()

    def _carried(self, uid: str, task: asyncio.Task[None]) -> None:
        if self._carrying.get(uid) is task:
            del self._carrying[uid]
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("carrying out a decision failed", exc_info=error)

    async def settle(self) -> None:
        """Waits until every action under way is carried out."""
        while self._carrying:
            await asyncio.gather(*self._carrying.values(), return_exceptions=True)

    async def _decide(
        self, view: PodView, candidates: Iterable[PolicySource]
    ) -> tuple[PodView, tuple[Action, ...], str | None] | None:
        """The core's decision for the pod's newest VIEW, its memory updated: the actions to
        carry out (None if there are none) with the view and the policy's name."""
        self._latest[view.uid] = (view, tuple(candidates))
        async with self._locks[view.uid]:
            decision = handle(
                view,
                self._latest[view.uid][1],
                self._memory.get(view.uid, PodMemory()),
                _now(),
                self._settings,
            )
            self._memory[view.uid] = decision.memory
            self._trim(view, decision.managed, decision.sweepable)
        return (view, decision.actions, decision.policy_name) if decision.actions else None

    def _trim(self, view: PodView, managed: bool, sweepable: bool) -> None:
        """Keeps state only where it is needed, so that thousands of Job pods cost nothing until
        their primaries end: memory once Tandem has acted on a pod, and the pod's view while a
        re-check or the sweep may need it (`Decision.sweepable`); not for every managed pod,
        which would hold the whole watch in memory."""
        acted = self._memory.get(view.uid, PodMemory()) != PodMemory()
        if sweepable:
            self._sweepable.add(view.uid)
        else:
            self._sweepable.discard(view.uid)
        if not ((managed and acted) or sweepable) or view.terminal:
            self._latest.pop(view.uid, None)
        if not acted:
            self._memory.pop(view.uid, None)
            if view.uid not in self._latest:
                self._locks.pop(view.uid, None)

    async def _carry_out(
        self,
        view: PodView,
        actions: tuple[Action, ...],
        policy_name: str | None,
        received: Monotonic,
    ) -> None:
        publish = self.publisher.publish
        stops = [a for a in actions if isinstance(a, Stop)]
        for action in actions:
            if isinstance(action, Report):
                publish(view, action, policy_name)
            elif isinstance(action, AddHelper):
                result = await self._stopper.add_helper(view, action)
                await self._learn(view, action, result, policy_name)
        reacted = False

        def started() -> None:
            """The reaction ends when the first exec or phase write starts: a burst of Jobs
            ending at once makes them wait for a free thread, and that wait counts."""
            nonlocal reacted
            if not reacted:
                reacted = True
                reaction = time.monotonic() - received
                metrics.REACTION.observe(reaction)
                logger.info(
                    "pod %s/%s: %s, %.1f ms after the watch event",
                    view.namespace,
                    view.name,
                    "stopping " + ", ".join(s.sidecar for s in stops)
                    if stops
                    else "finishing by phase",
                    reaction * 1000,
                )

        if stops:
            results = await asyncio.gather(*(self._timed(view, s, started) for s in stops))
            for stop, (result, seconds) in zip(stops, results, strict=True):
                delivery = (await self._learn(view, stop, result, policy_name)).delivery
                if delivery is not None:  # Always, for a Stop.
                    _observe_action(stop.path.value, delivery.value, seconds)
        # After the graceful stops: the kubelet stops what still runs once the phase is terminal.
        for action in actions:
            if isinstance(action, Finish):
                await self._finish(view, action, policy_name, started)
        # Only now: a re-check waits out a grace period that runs from the delivery, which
        # retries of a refused exec may have delayed by seconds.
        for action in actions:
            if isinstance(action, Recheck):
                self._schedule_recheck(view.uid, action.after)

    async def _finish(
        self, view: PodView, finish: Finish, policy_name: str | None, started: Callable[[], None]
    ) -> None:
        begun = time.monotonic()
        result = await self._stopper.finish(view, finish, started)
        _observe_action(
            "phase-again" if finish.again else "phase",
            "written" if result.ok else "refused",
            time.monotonic() - begun,
        )
        await self._learn(view, finish, result, policy_name)

    async def _timed(
        self, view: PodView, stop: Stop, started: Callable[[], None]
    ) -> tuple[ExecResult, float]:
        begun = time.monotonic()
        result = await self._stopper.deliver(view, stop, started)
        return result, time.monotonic() - begun

    async def _learn(
        self,
        view: PodView,
        action: Stop | AddHelper | Finish,
        result: ExecResult,
        policy_name: str | None,
    ) -> Learned:
        """Hands what carrying out ACTION came to back to the core (`learn`): keeps the memory
        it returns, unless the pod was forgotten meanwhile, posts its Event, and schedules the
        re-check it asks for (a sidecar without a shell: at once, along the next path)."""
        async with self._locks[view.uid]:
            learned = learn(
                self._memory.get(view.uid, PodMemory()),
                action,
                result,
                _now(),
                helper_image=self._stopper.image,
            )
            if view.uid in self._memory:
                self._memory[view.uid] = learned.memory
        if learned.report is not None:
            self.publisher.publish(view, learned.report, policy_name)
        if learned.recheck is not None:
            self._schedule_recheck(view.uid, learned.recheck.after)
        return learned

    def _schedule_recheck(self, uid: str, after: float) -> None:
        """Keeps the earlier of this re-check and the one pending for the pod, as a requeue
        after a delay does. A task created inside the handler inherits kopf's context, so it can
        post Events."""
        due = Monotonic(time.monotonic() + after)
        pending = self._rechecks.get(uid)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._rechecks[uid] = (due, asyncio.create_task(self._recheck(uid, after)))

    async def _recheck(self, uid: str, after: float) -> None:
        await asyncio.sleep(after)
        self._rechecks.pop(uid, None)  # Due: the reconcile below may ask for the next one.
        await self._again(uid)

    async def _again(self, uid: str, candidates: Iterable[PolicySource] | None = None) -> None:
        """Decides the pod again from its newest view, in its turn: after the actions under
        way, and itself under way for the events that come meanwhile. Decided beside a stop
        still in flight (an exec hanging until its timeout), an event would take that stop's
        grace period as over and escalate, or call the sidecar unstoppable."""

        async def decide() -> None:
            if uid in self._latest:
                view, latest = self._latest[uid]
                await self._reconcile(view, latest if candidates is None else candidates, _now())

        if not self._in_turn(uid, decide):
            self._chain(uid, decide())
        if (task := self._carrying.get(uid)) is not None:
            await asyncio.wait([task])

    async def close(self) -> None:
        await self.settle()
        tasks = [task for _, task in self._rechecks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
