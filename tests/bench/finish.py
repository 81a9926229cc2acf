"""Benchmark: how fast one write finishes a Job pod, against native sidecars and bare controls.
Prints figures; asserts nothing.

    .venv/bin/python -m tests.bench.finish [--jobs 20] [--spacing S] [--together] [--json FILE]

Arms, run one after the other in one run (with --together: at the same time, their Jobs created
in turn), each with JOBS Jobs on the real kubelet, applied at once (with --spacing: one every S
seconds, so that the kubelet is not stopping all of an arm's pods in one burst); every pod is a
primary (`sleep 2; exit 0`) and a sidecar that exits 0 the moment TERM arrives:
  - tandem:        Tandem finishes the pod by phase (its one annotated pods/status write);
  - native:        the sidecar as a native sidecar (an init container with restartPolicy Always);
  - control:       no Tandem; this script writes the phase and the annotation, in one write, as soon
                   as its watch sees the primary terminated (the floor Tandem is measured against);
  - control-phase-only: the same write without the annotation, as Tandem wrote it before (the
                   kubelet puts Running back and the sidecars run on; a bounded wait, few Jobs);
  - tandem-haproxy, control-haproxy: the sidecar is `haproxy -db` as PID 1, which ignores TERM and
                   soft-stops on USR1: does Tandem's USR1 before its write still win the race
                   against the kubelet's STOPSIGNAL (exit 0), where the control's write alone
                   leaves it to the KILL at the end of the grace period (137)?
  - tandem-failed, control-failed: the primary exits 3 (phase Failed);
  - tandem-stubborn, control-stubborn: the sidecar ignores TERM (KILLed when the 5-s grace period
                   ends). These two pairs count how often the kubelet writes Running back after
                   the write while it stops the containers, for Tandem and for the bare control.
Per pod, from the primary's end as the API first showed it (a watch event; the clocks below are the
same watch's): to its Job's Complete condition, to the pod's terminal phase, and to its last
sidecar's end; plus the sidecar's end by the API's own finishedAt stamps (whole seconds); phases the
watch saw go back from terminal; and status writes per pod from the audit log, by Tandem or the
control, and by the kubelet. Medians and p90.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch

from localcluster import Layout

from ..audit_log import audited
from ..kube import Kube, container_state, finished_at, wait_for
from ..manifests import (
    EXITS_0_AT_ONCE_ON_TERM,
    HAPROXY,
    HAPROXY_DB,
    IGNORES_TERM,
    container,
    job,
    pod_spec,
    primary,
)
from ..operator_process import start_operator, stop_operator
from . import new_namespace, quiet_cluster

ARMS = (
    "tandem",
    "native",
    "control",
    "control-phase-only",
    "tandem-haproxy",
    "control-haproxy",
    "tandem-failed",
    "control-failed",
    "tandem-stubborn",
    "control-stubborn",
    "control-conditioned-stubborn",
)
SMALL_ARMS = ARMS[4:]
"""Arms run with --small-jobs Jobs: what they show is a count, not a latency."""
TERMINAL = ("Succeeded", "Failed")
FINISHED = "tandem.dev/finished"


class Timeline:
    """One namespace's pods and Jobs as a watch sees them: when each pod's primary was first seen
    terminated, its phase terminal, its sidecar terminated; each Job's end; and every phase seen.
    With PATCH, calls PATCH(pod) once per pod when its primary is first seen terminated."""

    def __init__(self, api: client.ApiClient, namespace: str, patch: Any = None) -> None:
        self.primary: dict[str, float] = {}
        self.terminal: dict[str, float] = {}
        self.sidecar: dict[str, float] = {}
        self.phases: dict[str, list[str]] = collections.defaultdict(list)
        self.put_back: dict[str, float] = collections.defaultdict(float)
        """Seconds each pod spent back in a phase that is not terminal after a terminal one."""
        self._put_back_since: dict[str, float] = {}
        self.job_of: dict[str, str] = {}
        self.job_end: dict[str, float] = {}
        self._namespace, self._patch = namespace, patch
        self._watches: list[watch.Watch] = []
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        for listing, on_event in (
            (core.list_namespaced_pod, self._pod),
            (batch.list_namespaced_job, self._job),
        ):
            self._follow(listing, on_event)

    def _follow(self, listing: Any, on_event: Any) -> None:
        """Lists, then watches from the list's resourceVersion (so no event is missed), calling
        ON_EVENT(object, when) in a thread of its own; returns once the list is read."""
        listed = listing(self._namespace, _request_timeout=10)
        stream = watch.Watch()
        self._watches.append(stream)

        def run() -> None:
            # `stop` ends the stream mid-response: that is the end, not an error.
            with contextlib.suppress(urllib3.exceptions.ProtocolError):
                for event in stream.stream(
                    listing,
                    self._namespace,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=600,
                ):
                    on_event(event["object"], time.time())

        threading.Thread(target=run, daemon=True).start()

    def put_backs(self) -> list[float]:
        """Seconds each pod that was put back spent so (one still so counts until now)."""
        now = time.time()
        spans = dict(self.put_back)
        for name, since in self._put_back_since.items():
            spans[name] = spans.get(name, 0.0) + now - since
        return [span for span in spans.values() if span > 0]

    def _pod(self, pod: Any, now: float) -> None:
        name = pod.metadata.name
        self.job_of[name] = (pod.metadata.labels or {}).get("batch.kubernetes.io/job-name", "")
        phases = self.phases[name]
        if not phases or phases[-1] != pod.status.phase:
            phases.append(pod.status.phase)
            if pod.status.phase not in TERMINAL and name in self.terminal:
                self._put_back_since[name] = now
            elif (since := self._put_back_since.pop(name, None)) is not None:
                self.put_back[name] += now - since
        if pod.status.phase in TERMINAL:
            self.terminal.setdefault(name, now)
        statuses = {
            s.name: s
            for s in (pod.status.container_statuses or [])
            + (pod.status.init_container_statuses or [])
        }
        main, proxy = statuses.get("main"), statuses.get("proxy")
        if main is not None and main.state.terminated is not None and name not in self.primary:
            self.primary[name] = now
            if self._patch is not None:
                self._patch(pod)
        if proxy is not None and proxy.state.terminated is not None:
            self.sidecar.setdefault(name, now)

    def _job(self, job_: Any, now: float) -> None:
        ended = any(
            c.type in ("Complete", "Failed") and c.status == "True"
            for c in job_.status.conditions or ()
        )
        if ended:
            self.job_end.setdefault(job_.metadata.name, now)

    def stop(self) -> None:
        for w in self._watches:
            w.stop()


def control_patch(api: client.ApiClient, annotate: bool, conditioned: bool = False) -> Any:
    """The control's one write: the phase (and, with ANNOTATE, the annotation; with CONDITIONED,
    Tandem's condition) with the pod's uid and resourceVersion as preconditions, as Tandem
    writes it."""
    core = client.CoreV1Api(api)

    def patch(pod: Any) -> None:
        main = next(s for s in pod.status.container_statuses if s.name == "main")
        phase = "Succeeded" if main.state.terminated.exit_code == 0 else "Failed"
        metadata: dict[str, Any] = {
            "uid": pod.metadata.uid,
            "resourceVersion": pod.metadata.resource_version,
        }
        if annotate:
            metadata["annotations"] = {FINISHED: phase}
        status: dict[str, Any] = {"phase": phase}
        if conditioned:
            status["conditions"] = [
                {"type": "tandem.dev/Finished", "status": "True", "reason": f"Primaries{phase}"}
            ]
        body = {"metadata": metadata, "status": status}
        with contextlib.suppress(client.ApiException):  # 409: changed meanwhile; counted below
            core.patch_namespaced_pod_status(
                pod.metadata.name, pod.metadata.namespace, body, _request_timeout=10
            )

    return patch


def _template(arm: str) -> dict[str, Any]:
    sidecar = container("proxy", EXITS_0_AT_ONCE_ON_TERM)
    if arm.endswith("-haproxy"):
        sidecar = container("proxy", HAPROXY_DB, image=HAPROXY)
    elif arm.endswith("-stubborn"):
        sidecar = container("proxy", IGNORES_TERM)
    main = primary(exit_code=3 if arm.endswith("-failed") else 0, after=2)
    if arm == "native":
        return pod_spec([main], initContainers=[{**sidecar, "restartPolicy": "Always"}])
    return pod_spec([main, sidecar])


@dataclasses.dataclass
class Arm:
    """One arm under way: its namespace, its watch, and the Jobs to create."""

    arm: str
    ns: Kube
    timeline: Timeline
    manifests: list[dict[str, Any]]

    @classmethod
    def open(
        cls, kube: Kube, api: tuple[client.ApiClient, client.ApiClient], arm: str, jobs: int
    ) -> Arm:
        """ARM's namespace and watch, before any Job; API: the clients that watch, and that
        write the control's phase."""
        ns = new_namespace(kube, f"bench-{arm}")
        reader, writer = api
        patch = (
            control_patch(writer, arm != "control-phase-only", "-conditioned-" in arm)
            if arm.startswith("control")
            else None
        )
        annotations = {"tandem.dev/primary": "main"} if arm.startswith("tandem") else {}
        manifests = [job(f"j{i}", _template(arm), annotations=annotations) for i in range(jobs)]
        return cls(arm, ns, Timeline(reader, ns.namespace, patch), manifests)

    def figures(self, kube: Kube, layout: Layout, spacing: float, together: int) -> dict[str, Any]:
        """Waits for every Job and sidecar to end, removes the namespace, and sums it up."""
        arm, ns, timeline, jobs = self.arm, self.ns, self.timeline, len(self.manifests)
        wait_for(
            "every Job finished", lambda: len(timeline.job_end) == jobs, timeout=240, interval=0.5
        )
        if arm == "control-phase-only":
            _bounded_wait(lambda: len(timeline.sidecar) == jobs, 20)  # they may never end
        else:
            # The pods' grace period (5 s) bounds a sidecar that ignores its STOPSIGNAL.
            wait_for("every sidecar ended", lambda: len(timeline.sidecar) == jobs, timeout=60)
        time.sleep(1)  # the last watch events
        timeline.stop()
        pods = ns.get("pods")["items"]
        writes = _status_writes(layout, ns.namespace)
        kube.run("delete", "namespace", ns.namespace, "--wait=false", namespaced=False)
        return {
            "arm": arm,
            "jobs": jobs,
            "spacing_s": spacing,
            "arms_together": together,
            **_pod_figures(timeline, pods),
            "sidecars_ended": f"{len(timeline.sidecar)} of {jobs}",
            "put_back_s": _summary(timeline.put_backs()),
            "status_writes_per_pod": {
                who: round(sum(counts.values()) / jobs, 2) for who, counts in writes.items()
            },
        }


def _pod_figures(timeline: Timeline, pods: list[dict[str, Any]]) -> dict[str, Any]:
    to_job, to_terminal, to_sidecar, by_stamps, reverts = [], [], [], [], 0
    exits: collections.Counter[str] = collections.Counter()
    for pod in pods:
        name = pod["metadata"]["name"]
        start = timeline.primary.get(name)
        if start is None:
            continue
        if (end := timeline.job_end.get(timeline.job_of.get(name, ""))) is not None:
            to_job.append(end - start)
        if name in timeline.terminal:
            to_terminal.append(timeline.terminal[name] - start)
        if name in timeline.sidecar:
            to_sidecar.append(timeline.sidecar[name] - start)
        exits[str(_sidecar_exit(pod))] += 1
        ended, stopped = finished_at(pod, "main"), _sidecar_finished_at(pod)
        if ended is not None and stopped is not None:
            by_stamps.append(stopped - ended)
        phases = timeline.phases[name]
        reverts += sum(a in TERMINAL and b not in TERMINAL for a, b in itertools.pairwise(phases))
    return {
        "primary_to_job_complete_s": _summary(to_job),
        "primary_to_pod_terminal_s": _summary(to_terminal),
        "primary_to_last_sidecar_end_s": _summary(to_sidecar),
        "sidecar_finished_at_minus_primary_s": _summary(by_stamps),
        "sidecar_exit_codes": dict(sorted(exits.items())),
        "phase_reverts_seen": reverts,
    }


def run_arms(
    kube: Kube,
    layout: Layout,
    api: tuple[client.ApiClient, client.ApiClient],
    arms: list[tuple[str, int]],
    *,
    spacing: float = 0.0,
    together: bool = False,
) -> list[dict[str, Any]]:
    """The figures of ARMS (each with its number of Jobs): one after the other, or, TOGETHER, at
    the same time with their Jobs created in turn (one of each arm, then the next), so that
    every arm meets the same load. SPACING: seconds between one Job's creation and the next (0:
    each arm's Jobs at once, a burst)."""
    if not together:
        return [
            figures
            for arm, jobs in arms
            for figures in run_arms(
                kube, layout, api, [(arm, jobs)], spacing=spacing, together=True
            )
        ]
    opened = [Arm.open(kube, api, arm, jobs) for arm, jobs in arms]
    if spacing <= 0:
        for arm in opened:
            arm.ns.apply(*arm.manifests)
    else:
        turns = itertools.zip_longest(*([(a.ns, m) for m in a.manifests] for a in opened))
        began = time.monotonic()
        for i, (ns, manifest) in enumerate(item for turn in turns for item in turn if item):
            time.sleep(max(0.0, began + i * spacing - time.monotonic()))
            ns.apply(manifest)
    return [arm.figures(kube, layout, spacing, len(opened)) for arm in opened]


def _bounded_wait(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(0.5)


def _sidecar(pod: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's status, as a regular or a native sidecar."""
    for status in pod["status"].get("initContainerStatuses") or ():
        if status["name"] == "proxy":
            return dict(status)
    return container_state(pod, "proxy")


def _sidecar_exit(pod: dict[str, Any]) -> int | None:
    terminated = _sidecar(pod).get("state", {}).get("terminated")
    return None if terminated is None else int(terminated["exitCode"])


def _sidecar_finished_at(pod: dict[str, Any]) -> float | None:
    return finished_at({"status": {"containerStatuses": [_sidecar(pod)]}}, "proxy")


def _status_writes(layout: Layout, namespace: str) -> dict[str, collections.Counter[str]]:
    """Accepted pods/status patches per pod, by Tandem or the control (`writer`) and by the
    kubelet, once the audit log has them (it is written asynchronously)."""
    time.sleep(3)
    out: dict[str, collections.Counter[str]] = {"writer": collections.Counter()}
    out["kubelet"] = collections.Counter()
    for entry in audited(layout, namespace, "status"):
        if entry["verb"] != "patch" or not 200 <= entry["responseStatus"]["code"] < 300:
            continue
        who = "kubelet" if entry["user"]["username"].startswith("system:node:") else "writer"
        out[who][entry["objectRef"]["name"]] += 1
    return out


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "n": len(ordered),
    }


def _cell(summary: dict[str, float]) -> str:
    return f"{summary['median']} / {summary['p90']}" if summary else "-"


@contextlib.contextmanager
def _operator(layout: Layout) -> Iterator[None]:
    log = Path(tempfile.mkdtemp()) / "operator.log"
    running = start_operator(layout, log)
    try:
        yield
    finally:
        stop_operator(running)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--phase-only-jobs", type=int, default=5)
    parser.add_argument("--small-jobs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--arm", action="append", choices=ARMS, help="default: all")
    parser.add_argument(
        "--spacing",
        type=float,
        default=0.0,
        help="seconds between one Job's creation and the next (default 0: all at once, so every "
        "arm's primaries end together and the kubelet stops their pods in one burst)",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="run the arms at the same time, their Jobs created in turn (one of each arm, then "
        "the next), so that every arm meets the same load; default: one arm after the other",
    )
    args = parser.parse_args(argv)
    with quiet_cluster() as (layout, kube), _operator(layout):
        # The watches read as the admin; the control writes as the operator's user, so the
        # audit log counts its writes as it counts Tandem's.
        writer = config.new_client_from_config(str(layout.state / "operator.kubeconfig"))
        writer.rest_client.pool_manager.connection_pool_kw["retries"] = False  # as Tandem's
        api = (config.new_client_from_config(str(layout.admin_kubeconfig)), writer)
        run_arms(kube, layout, api, [("tandem", 3)])  # warm-up, unreported
        sizes = [
            (
                arm,
                args.phase_only_jobs
                if arm == "control-phase-only"
                else args.small_jobs
                if arm in SMALL_ARMS
                else args.jobs,
            )
            for arm in args.arm or ARMS
        ]
        results = run_arms(kube, layout, api, sizes, spacing=args.spacing, together=args.together)
    print("\nmedian / p90, seconds from the primary's end as the API first showed it")
    print(
        f"{'arm':20} {'jobs':>4}  {'-> Job Complete':>15}  {'-> pod terminal':>15}  "
        f"{'-> sidecar end':>15}  {'finishedAt diff':>15}  {'sidecars ended':>14}  "
        f"{'reverts':>7}  {'put back for':>13}  status writes per pod; sidecar exit codes"
    )
    for r in results:
        print(
            f"{r['arm']:20} {r['jobs']:>4}  {_cell(r['primary_to_job_complete_s']):>15}  "
            f"{_cell(r['primary_to_pod_terminal_s']):>15}  "
            f"{_cell(r['primary_to_last_sidecar_end_s']):>15}  "
            f"{_cell(r['sidecar_finished_at_minus_primary_s']):>15}  "
            f"{r['sidecars_ended']:>14}  {r['phase_reverts_seen']:>7}  "
            f"{_cell(r['put_back_s']):>13}  "
            f"{r['status_writes_per_pod']}; {r['sidecar_exit_codes']}"
        )
    by_arm = {r["arm"]: r for r in results}
    if "tandem" in by_arm and "control" in by_arm:
        tandem, control = (
            by_arm[a]["primary_to_job_complete_s"].get("median") for a in ("tandem", "control")
        )
        if tandem is not None and control is not None:
            print(f"\nJob Complete, tandem - control (medians): {tandem - control:+.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
