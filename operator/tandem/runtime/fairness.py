"""A fair share of the exec threads between namespaces.

One cluster-wide semaphore serves its waiters first come, first served: a namespace whose 1,000
Job pods end at once queues 1,000 stops, and every other namespace's stops wait behind all of
them, for minutes, while their own sidecars keep their pods running. Tenants must not be able to
do that to each other. So, when the slots are all taken, a freed slot goes to the namespaces that
are waiting in turn (round-robin), and within one namespace in order of arrival. A namespace
alone still gets every slot: fairness applies only among waiters, and no slot is ever kept idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


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
