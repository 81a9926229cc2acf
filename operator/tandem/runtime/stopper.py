"""Carries out a `Stop` by exec into the sidecar, off the event loop, with bounded retries."""

from __future__ import annotations

import asyncio
import logging

from tandem.adapters import ExecResult, Executor
from tandem.core import EventType, PodView, Reason, Report, Stop

from .settings import Settings

logger = logging.getLogger("tandem.stopper")

_NO_SHELL = ("no such file or directory", "executable file not found", "not found in $path")


def _transient(result: ExecResult) -> bool:
    """Worth another try: throttling, a server error, a timeout or a dropped connection."""
    if result.exit_code is not None:
        return False
    if result.status:
        return result.status in (429, 500, 502, 503, 504)
    lowered = result.error.lower()
    return not any(marker in lowered for marker in _NO_SHELL)


def failure_report(stop: Stop, result: ExecResult) -> Report:
    """A Warning that says why the stop could not be delivered, and what to do about it."""
    what = f"could not deliver {stop.action.describe()} to {stop.sidecar}"
    text = f"{result.error} {result.stderr}".strip()
    lowered = text.lower()
    if result.status == 403:
        fix = "grant the operator's ServiceAccount get and create on pods/exec"
    elif any(marker in lowered for marker in _NO_SHELL):
        fix = (
            "the image has no shell or no kill (a distroless image): give the sidecar an exec "
            "action with a binary it has, an HTTP action, or set shareProcessNamespace: true "
            "and let a container with a shell deliver it"
        )
    elif result.exit_code is not None:
        fix = f"the command exited {result.exit_code}; check that it works in that image"
    else:
        fix = "the API server or kubelet did not complete the exec; Tandem retried with backoff"
    return Report(
        EventType.WARNING,
        Reason.SIDECAR_STOP_FAILED,
        f"{what}: {text or 'no output'}. Fix: {fix}",
        on_job=True,
    )


class Stopper:
    def __init__(self, executor: Executor, settings: Settings) -> None:
        self._executor = executor
        self._settings = settings

    async def _exec_once(self, view: PodView, stop: Stop) -> ExecResult:
        timeout = self._settings.exec_timeout
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(
                    self._executor.run, view.namespace, view.name, stop.sidecar, stop.argv, timeout
                ),
                timeout + 5.0,
            )
        except TimeoutError:
            return ExecResult(None, error=f"the command did not finish in {timeout:g}s")

    async def deliver(self, view: PodView, stop: Stop) -> Report:
        """Delivers STOP; returns the Event to post: SidecarStopSent or SidecarStopFailed."""
        delay = self._settings.exec_backoff
        for attempt in range(1, self._settings.exec_retries + 1):
            result = await self._exec_once(view, stop)
            logger.info(
                "exec into %s/%s[%s]: %s -> exit %s %s",
                view.namespace,
                view.name,
                stop.sidecar,
                stop.action.describe(),
                result.exit_code,
                result.error,
            )
            if result.ok:
                return Report(
                    EventType.NORMAL,
                    Reason.SIDECAR_STOP_SENT,
                    f"sent {stop.action.describe()} to {stop.sidecar} "
                    f"(primaries' outcome {stop.outcome}, attempt {stop.attempt})",
                )
            if result.status == 404:
                return Report(
                    EventType.NORMAL,
                    Reason.SIDECAR_STOP_SENT,
                    f"{stop.sidecar} was already gone when Tandem came to stop it",
                )
            if not _transient(result) or attempt == self._settings.exec_retries:
                return failure_report(stop, result)
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the loop returns on its last attempt")
