"""Benchmark: the way of one pod event through Tandem's own code. Prints figures; asserts nothing.

    PYTHONPATH=operator:deploy/local .venv/bin/python -m tests.bench.pod_way

One pod body (its primary exited 0, its sidecar still runs) goes through the real kopf handler
(`runtime/handlers.py`, registered as the operator registers it) and the real Reconciler and
Stopper, with the fakes of the unit tests for the cluster (tests/unit/fakes.py): its phase write
reaches `MockStatus.finish`, where the real client's PATCH of pods/status would be sent. From the
handler's call to that write, every Python call is profiled (`sys.setprofile`, and
`threading.setprofile` for the executor's threads), and the distinct `tandem.*` modules whose code
is entered are listed, in the order first entered, with how often the way moved from one module to
another (consecutive calls in different modules). No cluster, no network.

Two ways are walked. The first pod's sidecar is one Tandem does not know (busybox): the way is the
phase write alone, and its count is the one issue #24 set out to halve (21 modules, 63 moves when
it was filed). The second pod's sidecar is haproxy, which Tandem knows: its graceful stop (USR1,
by exec) is carried out and learned from before the write, so the way is longer.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import kopf

from tandem.runtime.handlers import register
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.settings import Settings
from tests.unit.fakes import FinishCall, MockStatus, stopper, succeeds
from tests.unit.pods import PRIMARY, pod, running, status, terminated


def _body(image: str) -> dict[str, Any]:
    return pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("c2"))],
        annotations=PRIMARY,
        images={"proxy": image},
        resource_version="42",
    )


WAYS = {"an unknown sidecar (busybox)": "busybox", "a known sidecar (haproxy)": "haproxy:2.9"}


class Way:
    """The tandem.* modules entered, in order, until the phase write."""

    def __init__(self) -> None:
        self.modules: list[str] = []
        self.moves = 0
        self._last = ""
        self.on = False
        self._lock = threading.Lock()

    def profile(self, frame: FrameType, event: str, _: Any) -> None:
        if not self.on or event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("tandem."):
            return
        with self._lock:
            if module not in self.modules:
                self.modules.append(module)
            if module != self._last:
                self.moves += self._last != ""
                self._last = module


def _pod_handler(registry: kopf.OperatorRegistry) -> Callable[..., Any]:
    for handler in registry._watching.get_all_handlers():
        if handler.fn.__name__ == "pod_event":
            return handler.fn
    raise LookupError("no pod_event handler registered")


async def _drive(way: Way, body: dict[str, Any]) -> MockStatus:
    def written(call: FinishCall) -> Any:
        way.on = False  # The PATCH: the way ends here.
        return succeeds(call)

    posted: list[str] = []

    def event(_: Any, *, type: str, reason: str, message: str) -> None:
        posted.append(reason)  # kopf.event needs the queue that only kopf's own run has.

    kopf.event = event  # type: ignore[assignment]  # Events are not on the way to the PATCH.
    writes = MockStatus(written)
    reconciler = Reconciler(stopper(status=writes))
    registry = kopf.OperatorRegistry()
    register(registry, reconciler, None, Settings())
    handler = _pod_handler(registry)
    way.on = True
    await handler(type="MODIFIED", body=kopf.Body(body), namespace="default")
    await reconciler.settle()
    way.on = False
    await reconciler.close()
    return writes


def _walk(image: str) -> Way:
    way = Way()
    sys.setprofile(way.profile)
    threading.setprofile(way.profile)
    try:
        writes = asyncio.run(_drive(way, _body(image)))
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    if not writes.calls:
        sys.exit("the pod event ended without a phase write: the way was not walked")
    return way


def main() -> None:
    for which, image in WAYS.items():
        way = _walk(image)
        print(f"# {which}")
        for module in way.modules:
            print(module)
        print(f"modules: {len(way.modules)}  moves between them: {way.moves}")


if __name__ == "__main__":
    main()
