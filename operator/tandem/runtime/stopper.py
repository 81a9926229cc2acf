"""Carries out Stops (exec into the sidecar or the helper) and AddHelper, off the event loop, with
bounded retries, and says how each went: the Event to post, and what the core should learn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tandem.adapters import ExecResult, Executor, HelperAdder
from tandem.core import AddHelper, Delivery, EventType, PodView, Reason, Report, Stop

from .settings import Settings

logger = logging.getLogger("tandem.stopper")

# When a stop works, the sidecar's PID 1 exits at once, and the kernel kills whatever else runs in
# its PID namespace: often the exec'd command itself, before it could exit 0. So 137 means done.
_KILLED_WITH_ITS_CONTAINER = 137
_NO_SHELL = ("no such file or directory", "executable file not found", "not found in $path")


def _no_shell(result: ExecResult) -> bool:
    text = f"{result.error} {result.stderr}".lower()
    return result.exit_code is None and any(marker in text for marker in _NO_SHELL)


def _transient(result: ExecResult) -> bool:
    """Worth another try: throttling, a server error, a timeout or a dropped connection."""
    if result.exit_code is not None or _no_shell(result):
        return False
    return result.status in (0, 429, 500, 502, 503, 504)


def _fix(result: ExecResult, verb: str) -> str:
    if result.status == 403:
        return f"grant the operator's ServiceAccount {verb}"
    if result.exit_code is not None:
        return f"the command exited {result.exit_code}; check that it works in that image"
    if _no_shell(result):
        return "the container has no /bin/sh or kill; enable Tandem's helper (--helper-image)"
    return "the API server or the kubelet did not complete the call; Tandem retried with backoff"


class Stopper:
    def __init__(self, executor: Executor, helper: HelperAdder | None, settings: Settings) -> None:
        self._executor = executor
        self._helper = helper
        self._settings = settings
        # Its own pool: asyncio's default one has min(32, cores + 4) threads, 6 on two cores,
        # and is shared with kopf.
        self._pool = ThreadPoolExecutor(settings.exec_concurrency, thread_name_prefix="exec")
        # A stop waits for a free thread here, untimed: the exec deadline starts with the exec.
        # (Timing the wait as well made a burst of a thousand stops time out in the queue, and
        # their retries queue again behind the rest.)
        self._slots = asyncio.Semaphore(settings.exec_concurrency)

    @property
    def helper_enabled(self) -> bool:
        return self._helper is not None

    async def _call(
        self,
        call: Callable[[float], ExecResult],
        what: str,
        started: Callable[[], None] | None = None,
    ) -> ExecResult:
        """CALL with the exec deadline, retried with exponential backoff while transient.
        STARTED is called once, when the first try gets a thread."""
        timeout, delay = self._settings.exec_timeout, self._settings.exec_backoff
        retries = self._settings.exec_retries
        for attempt in range(1, retries + 1):
            async with self._slots:
                if started is not None:
                    started()
                    started = None
                try:
                    running = asyncio.get_running_loop().run_in_executor(self._pool, call, timeout)
                    result = await asyncio.wait_for(running, timeout + 5.0)
                except TimeoutError:
                    result = ExecResult(None, error=f"the command did not finish in {timeout:g}s")
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

    async def deliver(
        self, view: PodView, stop: Stop, started: Callable[[], None] | None = None
    ) -> tuple[Report | None, Delivery]:
        """Runs STOP's command; returns the Event to post (if any) and how it went. STARTED is
        called when the exec begins (after waiting for a free thread, if all are busy)."""
        result = await self._call(
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
        if result.ok or result.exit_code == _KILLED_WITH_ITS_CONTAINER:
            return Report(
                EventType.NORMAL,
                Reason.SIDECAR_STOP_SENT,
                f"sent {stop.action.describe()} to {stop.sidecar} via {stop.path} "
                f"(primaries' outcome {stop.outcome}, attempt {stop.attempt}, "
                f"step {stop.step + 1})",
            ), Delivery.DELIVERED
        if result.status == 404:
            return None, Delivery.GONE
        if _no_shell(result) and stop.container == stop.sidecar:
            return None, Delivery.NO_SHELL  # The core picks another path and says so.
        text = f"{result.error} {result.stderr}".strip() or "no output"
        return Report(
            EventType.WARNING,
            Reason.SIDECAR_STOP_FAILED,
            f"could not deliver {stop.action.describe()} to {stop.sidecar} via "
            f"{stop.path}: {text}. Fix: {_fix(result, 'get and create on pods/exec')}",
            on_job=True,
        ), Delivery.FAILED

    async def add_helper(self, view: PodView, add: AddHelper) -> Report:
        helper = self._helper
        if helper is None:
            raise AssertionError("the core asks for the helper only when it is enabled")
        result = await self._call(
            lambda timeout: helper.add(view.namespace, view.name, add.target, add.run_as, timeout),
            f"adding the helper to {view.namespace}/{view.name}",
        )
        if result.ok:
            return Report(
                EventType.NORMAL,
                Reason.HELPER_ADDED,
                f"added ephemeral container tandem-helper ({helper.image}) targeting "
                f"{add.target}, to stop sidecars that have no shell",
            )
        return Report(
            EventType.WARNING,
            Reason.SIDECAR_STOP_FAILED,
            f"could not add the helper container for {add.target}: {result.error}. "
            f"Fix: {_fix(result, 'patch on pods/ephemeralcontainers')}",
            on_job=True,
        )
