"""The exec slots are shared fairly between namespaces: one namespace's burst of stops does not
hold up another's, a namespace alone still gets every slot, and a waiter that is cancelled,
queued or just granted, neither leaks its slot nor frees one twice."""

from __future__ import annotations

import asyncio
import threading

from tandem.adapters import ExecResult
from tandem.core import PodView, parse_pod
from tandem.runtime import Settings
from tandem.runtime.stopper import FairSlots, Stopper

from .fakes import MockExec, gated
from .pods import pod, running, status, terminated
from .test_stopper import CID, STOP

SLOTS = 4


def _view(namespace: str) -> PodView:
    body = pod(
        ["main", "proxy"], [status("main", terminated(0, "m1")), status("proxy", running(CID))]
    )
    body["metadata"]["namespace"] = namespace
    return parse_pod(body)


def test_a_burst_in_one_namespace_does_not_hold_up_another() -> None:
    gate = threading.Event()  # every exec blocks until the test opens it
    stopper = Stopper(MockExec(gated(gate)), None, Settings(exec_concurrency=SLOTS))
    starts: list[str] = []

    def deliver(namespace: str) -> asyncio.Task[ExecResult]:
        return asyncio.create_task(
            stopper.deliver(_view(namespace), STOP, lambda: starts.append(namespace))
        )

    async def burst() -> None:
        tasks = [deliver("a") for _ in range(50)]
        await asyncio.sleep(0.05)  # a's first SLOTS hold every slot, its other 46 wait
        tasks += [deliver("b") for _ in range(2)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(burst())
    assert len(starts) == 52
    # Freed slots alternate between the waiting namespaces: b's two stops start 6th and 8th,
    # not 51st and 52nd behind all of a's.
    assert [i for i, namespace in enumerate(starts) if namespace == "b"] == [SLOTS + 1, SLOTS + 3]


def test_a_namespace_alone_gets_every_slot() -> None:
    pool, busy, most = FairSlots(SLOTS), [0], [0]

    async def use() -> None:
        async with pool.slot("a"):
            busy[0] += 1
            most[0] = max(most[0], busy[0])
            await asyncio.sleep(0.01)
            busy[0] -= 1

    async def many() -> None:
        await asyncio.gather(*(use() for _ in range(3 * SLOTS)))

    asyncio.run(many())
    assert most[0] == SLOTS and pool.free == SLOTS


async def _use(pool: FairSlots, key: str, ran: list[str], until: asyncio.Event | None) -> None:
    async with pool.slot(key):
        ran.append(key)
        if until is not None:
            await until.wait()


def _cancelled(granted: bool) -> tuple[list[str], int, int]:
    """One slot, held; a and then b wait; a is cancelled, still queued or just GRANTED the slot
    (its task not yet run). What ran, and the pool's free slots and waiters at the end."""
    pool, release = FairSlots(1), asyncio.Event()
    ran: list[str] = []

    async def scenario() -> None:
        holder = asyncio.create_task(_use(pool, "holder", ran, release))
        await asyncio.sleep(0)
        a = asyncio.create_task(_use(pool, "a", ran, None))
        b = asyncio.create_task(_use(pool, "b", ran, None))
        await asyncio.sleep(0)
        assert pool.waiting == 2
        if granted:
            release.set()
            await asyncio.sleep(0)  # the holder leaves; the slot goes to a, which has not run
            assert (pool.free, pool.waiting) == (0, 1)
        a.cancel()
        await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, a, b, return_exceptions=True), 2)

    asyncio.run(scenario())
    return ran, pool.free, pool.waiting


def test_a_cancelled_waiter_leaks_nothing_and_frees_nothing_twice() -> None:
    assert _cancelled(granted=False) == (["holder", "b"], 1, 0)


def test_a_waiter_cancelled_once_granted_passes_the_slot_on() -> None:
    assert _cancelled(granted=True) == (["holder", "b"], 1, 0)
