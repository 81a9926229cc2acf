"""The stopper's retries: transient refusals are retried with doubling backoff up to the budget,
then end (through the core's `learn`) in a Warning that names the cause; other failures
are not retried, and neither is a call that timed out, since its command may have run."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time

import pytest

from tandem.adapters import ExecResult
from tandem.core import (
    Delivery,
    EventType,
    Finish,
    Learned,
    Monotonic,
    Outcome,
    Phase,
    PodMemory,
    Reason,
    Report,
    Stop,
    StopPath,
    learn,
    parse_pod,
)
from tandem.core.policy.policy import DEFAULT_STOP
from tandem.runtime import Settings
from tandem.runtime.stopper import Stopper

from .fakes import ExecCall, MockExec, MockStatus, gated, script
from .pods import pod, running, status, terminated

CID = "containerd://abc123"
VIEW = parse_pod(
    pod(["main", "proxy"], [status("main", terminated(0, "m1")), status("proxy", running(CID))])
)
STOP = Stop(
    "proxy",
    CID,
    DEFAULT_STOP,
    Outcome.SUCCESS,
    1,
    0,
    StopPath.EXEC,
    "proxy",
    ("/bin/sh", "-c", "kill -s TERM 1"),
)
REFUSED = ExecResult(
    None,
    error="Handshake status 500 Internal Server Error: webhook says no",
    status=500,
    refused=True,
)


def _answering(*answers: ExecResult) -> MockExec:
    """An executor that answers from a list, the last answer repeating."""
    return MockExec(script(*answers))


def _deliver(
    executor: MockExec, retries: int = 4, backoff: float = 0.05
) -> tuple[Delivery, Report | None]:
    settings = Settings(exec_retries=retries, exec_backoff=backoff)
    stopper = Stopper(executor, None, settings)
    learned = _learn(PodMemory(), asyncio.run(stopper.deliver(VIEW, STOP)))
    assert learned.delivery is not None
    return learned.delivery, learned.report


def _learn(memory: PodMemory, result: ExecResult, stop: Stop = STOP) -> Learned:
    """What STOP came to, as the reconciler hands it back to the core."""
    return learn(memory, stop, result, Monotonic(0.0))


def test_throttling_is_retried_with_doubling_backoff_until_it_gets_through() -> None:
    throttled = ExecResult(
        None, error="Handshake status 429 Too Many Requests", status=429, refused=True
    )
    script = _answering(throttled, throttled, ExecResult(0))
    delivery, report = _deliver(script)
    assert delivery is Delivery.DELIVERED and report is not None
    assert report.reason is Reason.SIDECAR_STOP_SENT
    gaps = [b.at - a.at for a, b in itertools.pairwise(script.calls)]
    assert len(script.calls) == 3
    assert 0.05 <= gaps[0] < 0.09 and 0.1 <= gaps[1] < 0.15


def test_a_persistent_server_error_ends_in_a_warning_naming_it() -> None:
    script = _answering(REFUSED)
    delivery, report = _deliver(script, retries=3)
    assert len(script.calls) == 3 and delivery is Delivery.FAILED
    assert report is not None and report.type is EventType.WARNING
    assert report.reason is Reason.SIDECAR_STOP_FAILED and report.on_job
    assert "500 Internal Server Error: webhook says no" in report.message
    assert "retried with backoff" in report.message


def test_refusals_that_retrying_cannot_fix_are_not_retried() -> None:
    forbidden = ExecResult(None, error="Handshake status 403 Forbidden", status=403, refused=True)
    gone = ExecResult(None, error="x", status=404, refused=True)
    for answer in (forbidden, ExecResult(1), gone):
        script = _answering(answer)
        _deliver(script)
        assert len(script.calls) == 1, answer


def test_the_same_refusal_of_one_sidecar_run_is_told_once() -> None:
    # The sweep's Terminate sends the same stop again: a refusal already told is not a new Warning.
    first = _learn(PodMemory(), REFUSED)
    refused, memory = first.report, first.memory
    assert refused is not None and refused.reason is Reason.SIDECAR_STOP_FAILED
    assert _learn(memory, REFUSED) == Learned(memory, None, Delivery.FAILED)
    next_run = dataclasses.replace(STOP, container_id="containerd://its-next-run")
    assert _learn(memory, REFUSED, next_run).report == refused
    forbidden = _learn(memory, ExecResult(None, error="403 Forbidden", status=403))
    assert forbidden.report is not None and forbidden.report != refused  # other words: told
    sent = _learn(memory, ExecResult(0))
    assert sent.memory == memory and sent.report is not None  # a new stop, each time
    assert sent.report.reason is Reason.SIDECAR_STOP_SENT


def test_no_connection_is_retried() -> None:
    refused = ExecResult(None, error="[Errno 111] Connection refused", refused=True)
    script = _answering(refused, ExecResult(0))
    assert _deliver(script)[0] is Delivery.DELIVERED and len(script.calls) == 2


def test_a_call_that_may_have_run_is_not_tried_again_at_once() -> None:
    # The exec's own deadline, a 504 from a proxy that gave up waiting, a connection dropped
    # mid-exec: each may have delivered the signal already. Unconfirmed: the decision sends it
    # once more only after the sidecar's grace period (tests/unit/test_ladder.py).
    timed_out = ExecResult(None, error="the command did not finish in 10s")
    gateway = ExecResult(None, error="Handshake status 504 Gateway Timeout", status=504)
    dropped = ExecResult(None, error="the exec stream closed without a status")
    for answer in (timed_out, gateway, dropped):
        script = _answering(answer)
        delivery, report = _deliver(script)
        assert len(script.calls) == 1 and delivery is Delivery.UNCONFIRMED, answer
        assert report is not None and report.message.startswith("could not confirm signal TERM")
        assert "sends the same stop once more only if the sidecar still runs" in report.message
    # The kubelet's own Failure without an exit code was answered: failed, with its cause.
    answered = ExecResult(None, error="container not running (abc)", answered=True)
    delivery, report = _deliver(_answering(answered))
    assert delivery is Delivery.FAILED and report is not None
    assert report.message.startswith("could not deliver signal TERM"), report.message
    # The positive control: a refusal before the pod is reached is retried by the stopper.
    refused = ExecResult(None, error="Handshake status 500", status=500, refused=True)
    script = _answering(refused, ExecResult(0))
    assert _deliver(script)[0] is Delivery.DELIVERED and len(script.calls) == 2


def _slow(_: ExecCall) -> ExecResult:
    """Every exec takes 2 s and succeeds."""
    time.sleep(2.0)
    return ExecResult(0)


def test_waiting_for_a_free_exec_thread_does_not_count_toward_the_deadline() -> None:
    # One thread, four stops of 2 s each: the last waits 6 s for the thread, longer than the
    # deadline (0.1 s, plus the 5 s grace for a blocked call), and must still get through once.
    settings = Settings(exec_concurrency=1, exec_timeout=0.1, exec_retries=1)
    stopper = Stopper(MockExec(_slow), None, settings)
    started: list[float] = []

    async def burst() -> list[ExecResult]:
        return await asyncio.gather(
            *(stopper.deliver(VIEW, STOP, lambda: started.append(time.monotonic())) for _ in "1234")
        )

    results = asyncio.run(burst())
    assert [_learn(PodMemory(), r).delivery for r in results] == [Delivery.DELIVERED] * 4
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert all(gap >= 1.9 for gap in gaps), gaps  # one at a time, each told when it began


def test_hung_execs_filling_every_exec_thread_do_not_delay_a_phase_write() -> None:
    # Every exec hangs until released: a wedged kubelet, a half-open socket.
    release = threading.Event()
    hung = MockExec(gated(release))
    settings = Settings(exec_concurrency=2, exec_timeout=20.0)
    stopper = Stopper(hung, None, settings, status=MockStatus())
    finish = Finish(Phase.SUCCEEDED, "key", "uid", "1", "done")

    async def scenario() -> tuple[float, ExecResult, int, bool]:
        execs = [asyncio.create_task(stopper.deliver(VIEW, STOP)) for _ in range(3)]
        await asyncio.sleep(0.2)  # both exec threads taken, the third exec queued
        begun = time.monotonic()
        written = await asyncio.wait_for(stopper.finish(VIEW, finish), 5)
        took = time.monotonic() - begun
        pending, started = not any(task.done() for task in execs), len(hung.calls)
        release.set()
        await asyncio.gather(*execs)
        return took, written, started, pending

    took, written, started, pending = asyncio.run(scenario())
    assert written.ok and took < 1.0, took
    # The control: the execs were really hung, every exec thread taken, while the write ran.
    assert pending and started == 2


def test_a_call_that_raises_is_a_result_that_may_have_run_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stopper always returns a result: an exception out of an adapter (a bug, or an error
    it does not know) would cost the pod the rest of its decision, its phase write and re-check."""

    def raises(_: object) -> ExecResult:
        raise RuntimeError("an error no adapter expects")

    script = MockExec(raises)
    delivery, report = _deliver(script)
    assert len(script.calls) == 1 and delivery is Delivery.UNCONFIRMED  # not tried at once
    assert report is not None and "RuntimeError: an error no adapter expects" in report.message
    finish = Finish(Phase.SUCCEEDED, "key", "uid", "1", "done")
    stopper = Stopper(MockExec(), None, Settings(), MockStatus(raises))
    written = asyncio.run(stopper.finish(VIEW, finish))
    assert written.exit_code is None and not written.refused
    assert "RuntimeError: an error no adapter expects" in written.error
    logged = [r for r in caplog.records if r.getMessage().endswith("the call raised")]
    assert len(logged) == 2 and all(r.exc_info for r in logged)
