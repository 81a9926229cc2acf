"""Carrying out: runs the adapters' calls for Stops, AddHelper and phase writes (Finish) off the
event loop, with a deadline and bounded retries, and returns their plain results. What a result
means (its Delivery and its Event) is the core's to say (`tandem.core.finish.delivery`).

The threads are shared fairly between namespaces (`FairSlots`). A single cluster-wide semaphore
would serve its waiters first come, first served: a namespace whose 1,000 Job pods end at once
would queue 1,000 stops, and every other namespace's stops would wait behind all of them, for
minutes, while their own sidecars keep their pods running. Tenants must not be able to do that to
each other. So, when the slots are all taken, a freed slot goes to the namespaces that are waiting
in turn (round-robin), and within one namespace in order of arrival. A namespace alone still gets
every slot: fairness applies only among waiters, and no slot is ever kept idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from tandem.core import AddHelper, ExecResult, Finish, PodView, Stop

from .ports import Exec, HelperAdd, StatusWrite
from .settings import Settings

logger = logging.getLogger("tandem.stopper")

WRITE_CONCURRENCY = 32
"""Phase writes in flight at once, on threads of their own so that no exec, however hung, delays
one. One PATCH takes about 10 ms on a quiet API server, but 0.4-0.9 s in a burst of 1,000 Jobs
ending within 45 s on this project's two cores: 8 threads then queued the writes for seconds
(docs/benchmarks.md, "One write per pod in a burst")."""


def _transient(result: ExecResult) -> bool:
    """Worth another try at once: turned away before it reached the pod, by throttling, a server
    error or a connection that could not be made. Never a call that timed out: its command may
    have run (the signal may be delivered); the core sends such a stop once more only after the
    sidecar's grace period, if it still runs (`Delivery.UNCONFIRMED`)."""
    return result.unreached or (result.refused and result.status in (429, 500, 502, 503))


class Stopper:
    def __init__(
        self,
        executor: Exec,
        helper: HelperAdd | None,
        settings: Settings,
        status: StatusWrite | None = None,
    ) -> None:
        self._executor = executor
        self._helper = helper
        self._status = status
        self._settings = settings
        # Own pools: asyncio's default one is sized by the cores and shared with kopf. Execs and
        # phase writes do not share one, so that hung execs never hold up a pod's finish.
        self._execs = _Lane(settings.exec_concurrency, "exec")
        self._writes = _Lane(WRITE_CONCURRENCY, "write")

    @property
    def exec_actions(self) -> bool:
        """Policies' exec actions may run: the cluster admin's choice."""
        return self._settings.allow_exec_actions

    @property
    def exec_stops(self) -> bool:
        """Tandem may exec into pods at all (off: --no-exec)."""
        return self._settings.exec_stops

    async def _call(
        self,
        namespace: str,
        call: Callable[[float], ExecResult],
        what: str,
        started: Callable[[], None] | None = None,
        lane: _Lane | None = None,
    ) -> ExecResult:
        """CALL into a pod in NAMESPACE with the exec deadline, on LANE's threads (the execs'
        unless given), retried with exponential backoff while transient. STARTED is called once,
        when the first try gets a thread."""
        lane = lane or self._execs
        timeout, delay = self._settings.exec_timeout, self._settings.exec_backoff
        retries = self._settings.exec_retries
        for attempt in range(1, retries + 1):
            async with lane.slots.slot(namespace):
                if started is not None:
                    started()
                    started = None
                try:
                    running = asyncio.get_running_loop().run_in_executor(lane.pool, call, timeout)
                    result = await asyncio.wait_for(running, timeout + 5.0)
                except TimeoutError:  # Not refused: the command may be running still.
                    result = ExecResult(None, error=f"the command did not finish in {timeout:g}s")
                except Exception as error:  # An adapter's bug: logged; the decision goes on.
                    logger.exception("%s: the call raised", what)
                    result = ExecResult(
                        None, error=f"the call raised {type(error).__name__}: {error}"
                    )
            if not _transient(result) or attempt == retries:
                return result
            logger.info(
                "%s: try %d of %d failed (%s); next in %gs",
                what,
                attempt,
                retries,
                result.error or f"status {result.status}",
                delay,
            )
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the loop returns on its last attempt")

    @property
    def image(self) -> str:
        """The helper's image; empty when the helper is off."""
        return self._helper.image if self._helper is not None else ""

    async def deliver(
        self, view: PodView, stop: Stop, started: Callable[[], None] | None = None
    ) -> ExecResult:
        """Runs STOP's command. STARTED is called when the exec begins (after waiting for a free
        thread, if all are busy)."""
        result = await self._call(
            view.namespace,
            lambda timeout: self._executor.run(
                view.namespace, view.name, stop.container, stop.argv, timeout
            ),
            f"exec into {view.namespace}/{view.name}[{stop.container}]",
            started,
        )
        logger.info(
            "exec into %s/%s[%s] for %s: %s via %s -> exit %s %s",
            view.namespace,
            view.name,
            stop.container,
            stop.sidecar,
            stop.action.describe(),
            stop.path,
            result.exit_code,
            result.error,
        )
        return result

    async def add_helper(self, view: PodView, add: AddHelper) -> ExecResult:
        helper = self._helper
        if helper is None:
            raise AssertionError("the core asks for the helper only when it is enabled")
        return await self._call(
            view.namespace,
            lambda timeout: helper.add(view.namespace, view.name, add.target, add.run_as, timeout),
            f"adding the helper to {view.namespace}/{view.name}",
        )

    async def finish(
        self, view: PodView, finish: Finish, started: Callable[[], None] | None = None
    ) -> ExecResult:
        """Writes FINISH's phase to the pod's status, with the same deadline and retries."""
        status = self._status
        if status is None:
            raise AssertionError("the operator builds its Stopper with a StatusWriter")
        result = await self._call(
            view.namespace,
            lambda timeout: status.finish(view.namespace, view.name, finish, timeout),
            f"finishing {view.namespace}/{view.name}",
            started,
            self._writes,
        )
        logger.info(
            "pod %s/%s: phase %s%s -> %s",
            view.namespace,
            view.name,
            finish.phase,
            " again (the kubelet had put the pod back to Running)" if finish.again else "",
            "written" if result.ok else f"{result.status} {result.error}",
        )
        return result


class _Lane:
    """Threads for one kind of call, and the fair queue for them. A call waits for a free thread
    untimed: its deadline starts with the call, so a burst does not time out in the queue. Shared
    fairly between namespaces, so that one namespace's burst does not hold up every other's."""

    def __init__(self, threads: int, name: str) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self.slots = FairSlots(threads)


class FairSlots:
    """TOTAL slots, handed out round-robin among the keys (namespaces) that wait for one."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"a pool needs at least one slot, not {total}")
        self._free = total
        # Insertion order is the turn: a key served moves to the back, a new one joins there.
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    @property
    def free(self) -> int:
        return self._free

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Holds one slot for KEY while the block runs; waits, untimed, for one if none is free."""
        await self._acquire(key)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, key: str) -> None:
        if self._free and not self._waiting:
            self._free -= 1
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # Granted, then cancelled before it could run: pass it on.
            else:
                self._forget(key, granted)
            raise

    def _forget(self, key: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is not None and granted in queue:
            queue.remove(granted)
            if not queue:
                del self._waiting[key]

    def _release(self) -> None:
        self._free += 1
        while self._free and self._waiting:
            key = next(iter(self._waiting))
            queue = self._waiting.pop(key)
            granted = queue.popleft()
            if queue:
                self._waiting[key] = queue
            # A waiter cancelled since it queued is still here until its task runs: skip it.
            if not granted.done():
                self._free -= 1
                granted.set_result(None)
