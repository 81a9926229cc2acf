"""The sweep's Terminate on a pod that stays stuck, through the real Reconciler and Sweeper with a
refusing exec: the stop is re-run a bounded number of times per run of the primaries, and the
Events told once stay told (issue 16)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from tandem.adapters import ExecResult
from tandem.core import Monotonic, PodView, Reason, Report
from tandem.core.finish.decision import MAX_RERUNS
from tandem.core.sweep import SweepRules
from tandem.runtime import Settings
from tandem.runtime.events import Publisher
from tandem.runtime.reconciler import Reconciler
from tandem.runtime.stopper import Stopper
from tandem.runtime.sweeper import Sweeper

from .fakes import MockExec, MockReads, job
from .pods import pod, running, status, terminated, waiting

FORBIDDEN = ExecResult(None, error="Handshake status 403 Forbidden", status=403)


def refusing() -> MockExec:
    """An executor the API server refuses every exec: the sidecar runs on, the pod stays stuck."""
    return MockExec(lambda _: FORBIDDEN)


class Recorded(Publisher):
    def __init__(self) -> None:
        super().__init__()
        self.reports: list[Report] = []

    def publish(self, view: PodView, report: Report, policy_name: str | None = None) -> None:
        self.reports.append(report)


def jobs() -> MockReads:
    """The Job is there and not finished: the pod is stuck, not orphaned."""
    return MockReads(jobs_listed=[job("job-uid")])


def _ended(code: int, cid: str) -> dict[str, Any]:
    run = terminated(code, cid)
    run["terminated"]["finishedAt"] = "2020-01-01T00:00:00Z"
    return run


def _run(primary: dict[str, Any]) -> dict[str, Any]:
    """The pod under OnFailure with PRIMARY's status and a sidecar that never stops."""
    return pod(
        ["main", "proxy"],
        [primary, status("proxy", running("p1"))],
        annotations={"tandem.dev/primary": "main"},
        restart_policy="OnFailure",
    )


FAILED_RUN = _run(status("main", waiting("CrashLoopBackOff"), last=_ended(3, "m1")))
SECOND_RUN = _run(status("main", _ended(0, "m2"), last=_ended(3, "m1"), restarts=1))


def test_terminate_reruns_a_stuck_pod_a_bounded_number_of_times_per_run() -> None:
    executor, publisher = refusing(), Recorded()
    stopper = Stopper(executor, None, Settings(exec_retries=1))
    reconciler = Reconciler(stopper, publisher, kubelets_keep_phase=False)
    sweeper = Sweeper(jobs(), reconciler, SweepRules(stuck_after=0.0))
    told: list[Counter[Reason]] = []

    async def scenario() -> None:
        for body in (FAILED_RUN, SECOND_RUN):
            await reconciler.reconcile(body, (), Monotonic(time.monotonic()))
            for _ in range(MAX_RERUNS + 3):
                await sweeper.sweep_annotated(lambda namespace: ())
            told.append(Counter(r.reason for r in publisher.reports))
        await reconciler.close()

    asyncio.run(scenario())
    first, both = told
    assert len(executor.calls) == 2 * (1 + MAX_RERUNS)  # the first stop and the re-runs, per run
    assert first[Reason.PRIMARIES_FINISHED] == 1 and first[Reason.SIDECAR_STOP_FAILED] == 1
    assert first[Reason.POD_SWEPT] == MAX_RERUNS and first[Reason.SWEEP_SKIPPED] == 1
    # A new run of the primaries is told, and may be re-run again; the same refusal, to the
    # same sidecar run in the same words, is not told twice.
    assert both[Reason.PRIMARIES_FINISHED] == 2 and both[Reason.SIDECAR_STOP_FAILED] == 1
    assert both[Reason.POD_SWEPT] == 2 * MAX_RERUNS and both[Reason.SWEEP_SKIPPED] == 2
    swept = [r.message for r in publisher.reports if r.reason is Reason.POD_SWEPT]
    runs = [f"(re-run {n} of at most {MAX_RERUNS})" for n in range(1, MAX_RERUNS + 1)]
    assert [m[m.rindex("(") :] for m in swept] == runs * 2
    skipped = [r.message for r in publisher.reports if r.reason is Reason.SWEEP_SKIPPED]
    assert all(f"re-ran the stop {MAX_RERUNS} times" in m for m in skipped)


def test_a_deleted_pod_is_forgotten_whatever_the_sweep_kept() -> None:
    executor = refusing()
    stopper = Stopper(executor, None, Settings(exec_retries=1))
    reconciler = Reconciler(stopper, Recorded(), kubelets_keep_phase=False)
    sweeper = Sweeper(jobs(), reconciler, SweepRules(stuck_after=0.0))

    async def scenario() -> tuple[int, int]:
        await reconciler.reconcile(FAILED_RUN, (), Monotonic(time.monotonic()))
        await sweeper.sweep_annotated(lambda namespace: ())
        assert reconciler.memories()["uid-1"].reruns == 1
        assert [v.uid for v in reconciler.sweepable()] == ["uid-1"]  # kept, before the delete
        swept = len(executor.calls)
        reconciler.forget("uid-1")
        # The next sweep finds nothing to re-run: no exec into the deleted pod.
        await sweeper.sweep_annotated(lambda namespace: ())
        await reconciler.close()
        return swept, len(executor.calls)

    swept, after = asyncio.run(scenario())
    assert dict(reconciler.memories()) == {} and reconciler.sweepable() == []
    assert swept > 0 and after == swept
