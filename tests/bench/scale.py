"""Benchmark: Tandem at scale on kwok's fake node, and its idle cost. Prints figures only.

    PYTHONPATH=deploy/local:operator .venv/bin/python -m tests.bench.scale \\
        --pods 1000 --pods 10000 --idle 10000 --json tests/bench/results/scale.json

Each --pods N is run once per --finish path (default: Phase, then ExitCodes), with the same design:
N Job pods (plus 10 % more that Tandem does not manage), whose primaries all end within --window
seconds of one moment chosen after every pod runs (kwok's stage), each pod annotated with its path
(tandem.dev/finish). kwok plays a kubelet that keeps an API-set phase:
  - Phase: Tandem writes the pod's terminal phase through pods/status, and kwok stops the sidecar
    (stage pod-api-phase-stops-containers, on the write's annotation), as that kubelet would;
  - ExitCodes: Tandem execs into the sidecar, and the benchmark, as the kubelet, ends it
    (tests/kwok_workload.py's ExecAnswerer, writing as user kwok).
Figures per run:
  - reaction, watch event -> the exec or the phase write starting: exact, from the operator's log
    line per pod, and estimated from its histogram tandem_reaction_seconds; and as the API server
    saw it, the kubelet's status write that ended the primary -> Tandem's first request (audit);
  - primary end -> pod terminal as the API server saw it: that write -> Tandem's accepted phase
    write (Phase), or the kubelet's write of the sidecar's end and the phase (ExitCodes); and
    primary end -> sidecar ended (the kubelet's first write after Tandem acted), both per pod;
  - time from the first primary's planned end until every managed pod is terminal;
  - the operator's peak RSS and CPU seconds (/proc), CPU per finished pod, execs per sidecar;
  - the operator's API requests by verb and resource, per pod (audit log), and any request that
    touched a pod needing no action.
--releases R (default 1) runs R operators at once, as R releases of the chart would: each watches
its own --release-namespaces namespaces (--namespace) and meets in its own ClusterKopfPeering; the
pods are spread over all of them, one burst for all; figures per operator too.
Idle: N managed Job pods whose primaries keep running, watched; RSS and CPU over 60 s once settled.
--operator-source S (repeatable) runs each burst and idle run once per source root, in the order
given: another checkout's operator/ beside this one's compares commits in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from localcluster import Layout, kwok, supervisor

from ..kube import Kube, wait_for
from ..kwok_workload import ExecAnswerer, create_jobs, kwok_job, peak_rss_and_cpu
from ..operator_process import (
    ROOT,
    Operator,
    peering_grant,
    revoke_peering,
    start_operator,
    stop_operator,
)
from . import new_namespace, quiet_cluster
from .audit import AuditTail, PodTimes, Request, job_of, pod_times, tally

FINISHES = ("Phase", "ExitCodes")
_REACTION = re.compile(
    r"pod (?P<namespace>\S+)/(?P<pod>\S+): (?P<what>stopping .*|finishing by phase), "
    r"(?P<ms>[\d.]+) ms after the watch event"
)
_BUCKET = r'{}_bucket\{{le="([^"]+)"{}\}} ([\d.e+]+)'
OPERATOR_FLAGS = ("--sweep-interval=60", "--log-format=text")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 1)}


def histogram_percentiles(metrics: str, name: str, labels: str = "") -> dict[str, float]:
    """p50/p90/p99 in ms of histogram NAME with LABELS (`,path="exec"`: those after `le`, as the
    client sorts them), from its cumulative buckets, interpolated linearly inside a bucket."""
    buckets = [
        (float("inf") if le == "+Inf" else float(le), float(n))
        for le, n in re.findall(_BUCKET.format(name, re.escape(labels)), metrics)
    ]
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]
    out = {}
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        low, below = 0.0, 0.0
        for le, count in buckets:
            if count >= q * total:
                high = le if le != float("inf") else low
                share = (q * total - below) / max(count - below, 1)
                out[label] = round((low + (high - low) * share) * 1000, 1)
                break
            low, below = le, count
    out["n"] = total
    return out


def reactions(log: str, namespaces: set[str]) -> tuple[dict[str, float], Counter[str]]:
    """From an operator's log: per pod in NAMESPACES, its first reaction in ms (a pod written again
    later logs again); and how many pods each path took (`stopping` or `finishing by phase`)."""
    first: dict[str, float] = {}
    paths: Counter[str] = Counter()
    for found in _REACTION.finditer(log):
        pod = f"{found['namespace']}/{found['pod']}"
        if found["namespace"] in namespaces and pod not in first:
            first[pod] = float(found["ms"])
            paths["stopping" if found["what"].startswith("stopping") else found["what"]] += 1
    return first, paths


def _pods(ns: Kube) -> list[dict[str, Any]]:
    return list(ns.get("pods")["items"])


def _delete(kube: Kube, ns: Kube) -> None:
    """Pods first, in one collection delete with no grace (the namespace controller takes them
    one at a time, and kwok's fake pods need none), then the namespace."""
    raw = f"/api/v1/namespaces/{ns.namespace}/pods?gracePeriodSeconds=0"
    kube.run("delete", "--raw", raw, namespaced=False, check=False)
    kube.run("delete", "namespace", ns.namespace, "--wait=false", namespaced=False)


def _count_running(ns: Kube) -> int:
    """Pods in phase Running, by name only: cheap enough to poll at 10,000 pods."""
    listed = ns.run("get", "pods", "--field-selector=status.phase=Running", "-o", "name")
    return len(listed.stdout.split())


COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok")


def _cpu_of_components(layout: Layout) -> dict[str, float]:
    cpu = {}
    for name in COMPONENTS:
        pid = supervisor.pid_of(layout, name)
        if pid:
            cpu[name] = peak_rss_and_cpu(pid)[2]
    return cpu


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(cpu - before.get(name, 0.0), 1) for name, cpu in after.items()}


def _new_namespaces(kube: Kube, prefix: str, count: int = 1) -> list[Kube]:
    # An earlier run's namespace still being deleted (thousands of pods and Events) loads the
    # API server and etcd enough to distort the figures.
    wait_for(
        "earlier benchmark namespaces deleted",
        lambda: (
            not [
                n
                for n in kube.get("namespaces")["items"]
                if n["metadata"]["name"].startswith(("scale-", "idle-"))
            ]
        ),
        timeout=900,
        interval=5,
    )
    return [new_namespace(kube, prefix) for _ in range(count)]


@dataclasses.dataclass
class Release:
    """One operator and the namespaces it watches: one release of the chart, in a real cluster."""

    name: str
    namespaces: list[Kube]
    peering: bool
    """Namespaced, meeting its standbys in its own ClusterKopfPeering (the chart's `tandem-<release
    namespace>`), which only it may write; else cluster-wide, standalone."""
    operator: Operator | None = None
    cpu: list[float] = dataclasses.field(default_factory=list)
    """CPU seconds when the pods are created, at the burst, after it."""

    @property
    def names(self) -> set[str]:
        return {ns.namespace for ns in self.namespaces}

    def start(
        self,
        layout: Layout,
        log: Path,
        selector: str,
        flags: tuple[str, ...],
        source: Path | None = None,
    ) -> None:
        scope: list[str] = []
        if self.peering:
            self.namespaces[0].apply(*peering_grant(self.name))
            scope = [*(f"--namespace={ns.namespace}" for ns in self.namespaces)]
            scope.append(f"--peering={self.name}")
        self.operator = start_operator(
            layout,
            log,
            *OPERATOR_FLAGS,
            *flags,
            *scope,
            f"--pod-selector={selector}",
            source=source,
        )

    def close(self) -> None:
        if self.operator is not None:
            stop_operator(self.operator)
        if self.peering:
            revoke_peering(self.namespaces[0], self.name)

    def sample(self) -> None:
        if self.operator is not None:
            self.cpu.append(peak_rss_and_cpu(self.operator.process.pid)[2])


def _releases(kube: Kube, releases: int, per_release: int) -> list[Release]:
    """One cluster-wide operator (the design of earlier runs), or RELEASES namespaced ones."""
    if releases == 1:
        return [Release("tandem", _new_namespaces(kube, "scale"), peering=False)]
    namespaces = _new_namespaces(kube, "scale", releases * per_release)
    return [
        Release(
            f"tandem-{chr(ord('a') + r)}",
            namespaces[r * per_release : (r + 1) * per_release],
            peering=True,
        )
        for r in range(releases)
    ]


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else (later - earlier) * 1000


def summarise(
    times: dict[tuple[str, str], PodTimes], requests: list[Request], unmanaged: set[str]
) -> dict[str, Any]:
    """The audit log's figures over the managed pods that Tandem acted on (TIMES), and Tandem's
    requests: by verb and resource, and those that touched a pod in UNMANAGED (namespace/name)."""

    def samples(pick: Any) -> list[float]:
        return [round(v, 1) for t in times.values() if (v := pick(t)) is not None]

    reaction = samples(lambda t: _ms(t.acted, t.primary_ended))
    terminal = samples(lambda t: _ms(t.terminal, t.primary_ended))
    sidecar = samples(lambda t: _ms(t.sidecar_ended, t.primary_ended))
    ends = sorted(t.primary_ended for t in times.values() if t.primary_ended is not None)
    touched = Counter(
        r.key
        for r in requests
        if r.user == "tandem-operator"
        and r.resource.startswith("pods")
        and job_of(r.namespace, r.name) in unmanaged
    )
    return {
        "reaction_api_ms": percentiles(reaction),
        "primary_end_to_terminal_ms": percentiles(terminal),
        "primary_end_to_sidecar_ended_ms": percentiles(sidecar),
        "samples": {
            "reaction_api": reaction,
            "primary_end_to_terminal": terminal,
            "primary_end_to_sidecar_ended": sidecar,
        },
        "primary_ends_spread_s": round(ends[-1] - ends[0], 1) if ends else None,
        "first_action": dict(Counter(t.action for t in times.values())),
        "phase_writes": {
            "total": sum(t.phase_writes for t in times.values()),
            "refused": sum(t.phase_writes_refused for t in times.values()),
            "pods_written_more_than_once": sum(t.phase_writes > 1 for t in times.values()),
        },
        "requests": tally(requests),
        "touched_unmanaged": dict(touched),
    }


def _profilers(groups: list[Release], logs: Path, tag: str) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "py-spy"),
                "record",
                "--nonblocking",
                "--threads",
                "--format=raw",
                f"--output={logs / f'profile-{tag}-{g.name}.txt'}",
                f"--pid={g.operator.process.pid}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for g in groups
        if g.operator is not None
    ]


def _create_pods(
    namespaces: list[Kube], pods: int, window: float, labels: dict[str, str], finish: str
) -> tuple[float, float]:
    """PODS managed Jobs `jNNNNN` and a tenth as many unmanaged `uNNNNN`, spread over NAMESPACES in
    turn; returns when the first primary is to end, and how long creating them took."""
    created = time.time()
    first_end = created + 30 + pods * 0.05  # after every pod runs (checked by the caller)
    jobs: dict[int, list[dict[str, Any]]] = {}
    for i in range(pods):
        ends = first_end + random.uniform(0, window)
        job = kwok_job(f"j{i:05d}", i, ends, labels=labels, finish=finish)
        jobs.setdefault(i % len(namespaces), []).append(job)
    for i in range(pods, pods + pods // 10):
        job = kwok_job(f"u{i:05d}", i, first_end, managed=False, labels=labels)
        jobs.setdefault(i % len(namespaces), []).append(job)
    for n, batch in jobs.items():
        create_jobs(namespaces[n], batch)
    return first_end, time.time() - created


def _operator_figures(
    g: Release,
    scrapes: tuple[str, str],
    rss: tuple[float, float],
    requests: list[Request],
    pods: int,
) -> dict[str, Any]:
    """Release G's operator: its reactions, memory, CPU, requests and the pod watch events it got
    from the first primary's end on (SCRAPES of its metrics then and at the end), per pod of its
    PODS."""
    at_first_end, metrics = scrapes
    name = "tandem_pod_watch_events_total"
    events = _counter(metrics, name) - _counter(at_first_end, name)
    assert g.operator is not None
    own, paths = reactions(g.operator.log_text(), g.names)
    cpu_burst = g.cpu[2] - g.cpu[1]
    return {
        "release": g.name,
        "namespaces": sorted(g.names),
        "pods": pods,
        "paths_in_log": dict(paths),
        "reaction_own_ms": percentiles(list(own.values())),
        "reaction_own_samples_ms": [round(v, 1) for v in own.values()],
        "reaction_histogram_ms": histogram_percentiles(metrics, "tandem_reaction_seconds"),
        "action_duration_histogram_ms": {
            path: histogram_percentiles(
                metrics, "tandem_action_duration_seconds", f',path="{path}"'
            )
            for path in ("exec", "phase")
        },
        "rss_mib": round(rss[0], 1),
        "peak_rss_mib": round(rss[1], 1),
        "cpu_s": round(g.cpu[2] - g.cpu[0], 1),
        "cpu_burst_s": round(cpu_burst, 1),
        "cpu_ms_per_pod": round(1000 * cpu_burst / max(pods, 1), 2),
        # Of every Job pod it watches, the 10 % it does not manage included; None for an operator
        # without the counter (a checkout older than it).
        "watch_events_per_pod": (
            round(events / max(pods, 1), 2) if re.search(rf"^{name} ", metrics, re.M) else None
        ),
        "requests_per_pod": {
            k: round(v / max(pods, 1), 3) for k, v in sorted(tally(requests, g.names).items())
        },
    }


def _counter(metrics: str, name: str) -> float:
    """An unlabelled counter's value in a /metrics scrape (0 when absent)."""
    match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    return float(match[1]) if match else 0.0


def _stop(
    profilers: list[subprocess.Popen[bytes]], groups: list[Release], answerer: ExecAnswerer
) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    for g in groups:
        g.close()
    answerer.close()


def _phases_then_delete(kube: Kube, namespaces: list[Kube]) -> Counter[str]:
    """The managed pods' phases at the end, then the namespaces deleted."""
    phases: Counter[str] = Counter()
    for ns in namespaces:
        listing = _pods(ns)
        phases.update(p["status"].get("phase") for p in listing if p["metadata"]["name"][0] == "j")
        _delete(kube, ns)
    return phases


def run_scale(
    kube: Kube,
    layout: Layout,
    pods: int,
    window: float,
    logs: Path,
    *,
    finish: str = "Phase",
    releases: int = 1,
    per_release: int = 2,
    profile: bool = False,
    operator_flags: tuple[str, ...] = (),
    source: Path | None = None,
) -> dict[str, Any]:
    groups = _releases(kube, releases, per_release)
    namespaces = [ns for g in groups for ns in g.namespaces]
    names = [ns.namespace for ns in namespaces]
    extra = pods // 10
    where = {i: names[i % len(names)] for i in range(pods + extra)}
    managed = {f"{where[i]}/j{i:05d}" for i in range(pods)}
    unmanaged = {f"{where[i]}/u{i:05d}" for i in range(pods, pods + extra)}
    # This run's operators see no other Job pods.
    labels, selector = {"bench.tandem.dev/run": names[0]}, f"bench.tandem.dev/run={names[0]}"
    tag = (
        f"{pods}-{finish}"
        + (f"-{releases}releases" if releases > 1 else "")
        + (f"-{source.resolve().parent.name}" if source else "")
    )
    # Both paths get the answerer: a pod that took the exec path in a Phase run still ends, and
    # the requests and first actions show it.
    answerer = ExecAnswerer(layout, names)
    audit = AuditTail(layout.logs / "audit.log", names)
    profilers: list[subprocess.Popen[bytes]] = []

    def burst_times() -> dict[tuple[str, str], PodTimes]:
        return {k: t for k, t in pod_times(audit.poll()).items() if job_of(*k) in managed}

    def counted(field: str) -> int:
        """Managed pods whose FIELD the audit log gives. Polled every 2 s: at 10,000 pods each
        poll takes the benchmark tens of ms of CPU, on the cores the burst uses."""
        return sum(getattr(t, field) is not None for t in burst_times().values())

    try:
        for g in groups:
            g.start(layout, logs / f"operator-{tag}-{g.name}.log", selector, operator_flags, source)
        profilers = _profilers(groups, logs, tag) if profile else []
        for g in groups:
            g.sample()
        components = [_cpu_of_components(layout)]
        first_end, created_in = _create_pods(namespaces, pods, window, labels, finish)
        wait_for(
            "every pod running",
            lambda: sum(_count_running(ns) for ns in namespaces) == pods + extra,
            timeout=first_end - time.time() + 120,
            interval=2,
        )
        answerer.prefetch()
        all_running = time.time()
        # CPU is split at the first primary's end: creating and starting the pods is the Job
        # controller's, the scheduler's and kwok's work, not Tandem's.
        time.sleep(max(0.0, first_end - time.time() - 1))
        for g in groups:
            g.sample()
        components.append(_cpu_of_components(layout))
        before = {g.name: g.operator.metrics() for g in groups if g.operator}
        # The audit log, not a listing: listing 10,000 pods every few seconds would load the
        # API server more than Tandem does.
        wait_for(
            "every managed pod terminal (audit log)",
            lambda: counted("terminal") >= pods,
            timeout=window + 300 + pods * 0.1,
            interval=2,
        )
        with contextlib.suppress(AssertionError):  # counted below: a stage that did not play
            # The sidecars' ends, which the pods' watch events bring to Tandem too: part of
            # the burst's cost.
            wait_for(
                "every managed pod's sidecar ended (audit log)",
                lambda: counted("sidecar_ended") >= pods,
                timeout=60 + pods * 0.02,
                interval=2,
            )
        time.sleep(3)  # the last events reach the operators; the audit log is written async
        for g in groups:
            g.sample()
        components.append(_cpu_of_components(layout))
        rss = {g.name: peak_rss_and_cpu(g.operator.process.pid)[:2] for g in groups if g.operator}
        metrics = {g.name: g.operator.metrics() for g in groups if g.operator}
    finally:
        _stop(profilers, groups, answerer)
    requests = list(audit.poll())
    times = burst_times()
    audit.close()
    phases = _phases_then_delete(kube, namespaces)
    burst = summarise(times, requests, unmanaged)
    operators = [
        _operator_figures(
            g,
            (before[g.name], metrics[g.name]),
            rss[g.name],
            requests,
            sum(pod.split("/")[0] in g.names for pod in managed),
        )
        for g in groups
    ]
    own = [v for o in operators for v in o.pop("reaction_own_samples_ms")]
    paths = sum((Counter(o["paths_in_log"]) for o in operators), Counter[str]())
    terminal_at = [t.terminal for t in times.values() if t.terminal is not None]
    execs = list(answerer.execs.values())
    cpu_burst = sum(o["cpu_burst_s"] for o in operators)
    return {
        "pods": pods,
        "finish": finish,
        "operator_source": str(source or "this checkout"),
        "releases": releases,
        "namespaces": len(namespaces),
        "unmanaged_pods": extra,
        "window_s": window,
        "created_in_s": round(created_in, 1),
        "all_running_before_first_end": all_running < first_end,
        "phases": dict(phases),
        "paths_in_operator_log": dict(paths),
        "first_action_in_audit": burst["first_action"],
        "reaction_own_ms": percentiles(own),
        "reaction_histogram_ms": operators[0]["reaction_histogram_ms"] if releases == 1 else {},
        "reaction_api_ms": burst["reaction_api_ms"],
        "primary_end_to_terminal_ms": burst["primary_end_to_terminal_ms"],
        "primary_end_to_sidecar_ended_ms": burst["primary_end_to_sidecar_ended_ms"],
        "samples_ms": {"reaction_own": own, **burst["samples"]},
        "first_primary_end_to_all_terminal_s": round(
            max(terminal_at, default=first_end) - first_end, 1
        ),
        "pods_terminal": len(terminal_at),
        "sidecars_ended": sum(t.sidecar_ended is not None for t in times.values()),
        # With several operators: the largest memory, and CPU summed.
        "operator_rss_mib": max(o["rss_mib"] for o in operators),
        "operator_peak_rss_mib": max(o["peak_rss_mib"] for o in operators),
        "operator_cpu_s": round(sum(o["cpu_s"] for o in operators), 1),
        "operator_cpu_burst_s": round(cpu_burst, 1),
        "operator_cpu_ms_per_pod": round(1000 * cpu_burst / max(pods, 1), 2),
        "operators": operators,
        "cluster_cpu_setup_s": _cpu_delta(components[0], components[1]),
        "cluster_cpu_burst_s": _cpu_delta(components[1], components[2]),
        "operator_flags": list(operator_flags),
        "primary_ends_spread_s": burst["primary_ends_spread_s"],
        "execs_per_sidecar": {
            "max": max(execs, default=0),
            "total": sum(execs),
            "sidecars": len(execs),
        },
        "phase_writes": burst["phase_writes"],
        "requests_per_pod": {k: round(v / pods, 3) for k, v in sorted(burst["requests"].items())},
        "requests_touching_unmanaged_pods": burst["touched_unmanaged"],
        "answer_errors": answerer.errors[:5],
    }


def run_idle(
    kube: Kube,
    layout: Layout,
    pods: int,
    seconds: float,
    logs: Path,
    *,
    padding_kib: int = 0,
    source: Path | None = None,
) -> dict[str, Any]:
    """PADDING_KIB: an annotation of that size on every pod (not Tandem's), what a tenant can
    make the operator hold; SOURCE: the operator's source root, another checkout's to compare."""
    [ns] = _new_namespaces(kube, "idle")
    far = time.time() + 10 * 24 * 3600  # primaries that never end during the run
    run = {"bench.tandem.dev/run": ns.namespace}
    # Managed pods: Tandem parses each one's policy, where an unmanaged pod is skipped sooner.
    jobs = [kwok_job(f"i{i:05d}", i, far, labels=run) for i in range(pods)]
    for job in jobs:
        if padding_kib:
            annotations = job["spec"]["template"]["metadata"]["annotations"]
            annotations["bench.tandem.dev/padding"] = "x" * (padding_kib * 1024)
    create_jobs(ns, jobs, chunk=10 if padding_kib else 250)
    wait_for("every idle pod running", lambda: _count_running(ns) == pods, timeout=900, interval=5)
    operator = start_operator(
        layout,
        logs / f"operator-idle-{pods}.log",
        *OPERATOR_FLAGS,
        f"--pod-selector=bench.tandem.dev/run={ns.namespace}",
        source=source,
    )
    try:
        time.sleep(15)  # the initial list and its events settle
        _, _, cpu_before = peak_rss_and_cpu(operator.process.pid)
        time.sleep(seconds)
        rss, peak, cpu_after = peak_rss_and_cpu(operator.process.pid)
    finally:
        stop_operator(operator)
    _delete(kube, ns)
    cpu = cpu_after - cpu_before
    return {
        "idle_pods": pods,
        "idle_pods_kind": "managed (tandem.dev/primary), primaries running",
        "padding_kib_per_pod": padding_kib,
        "operator_source": str(source or "this checkout"),
        "seconds": seconds,
        "rss_mib": round(rss, 1),
        "peak_rss_mib": round(peak, 1),
        "cpu_s": round(cpu, 2),
        "cpu_percent_of_a_core": round(100 * cpu / seconds, 2),
    }


def _or_dash(value: float | None) -> str:
    return "-" if value is None else str(value)


def _source(run: dict[str, Any]) -> str:
    """The compared checkout's operator source, when the run had one."""
    source = run.get("operator_source", "this checkout")
    return "" if source == "this checkout" else f" ({source})"


TARGETS = (
    "Issue 17's targets: reaction p50 ≤ 50 ms, p99 ≤ 250 ms; primary end → pod terminal p99 ≤ "
    "1,000 ms (1,000 pods in 10 s); operator CPU ≤ 3 ms per finished pod; 1 status patch and ≤ 2 "
    "Events per pod; 10,000 in 10 s: peak RSS ≤ 256 MiB; idle 10,000: ≤ 150 MiB, ≤ 2 % of a core."
)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Scale benchmark, {results['date']}, {results['machine']}. "
        "Times in ms as p50 / p90 / p99 / max.",
        "",
        TARGETS,
        "",
        "| pods | finish | operators | reaction (own log) | reaction (API audit) "
        "| primary end → terminal (audit) | first primary end → all terminal | peak RSS "
        "| CPU per pod | watch events per pod | max execs per sidecar | requests per pod |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(p: dict[str, float]) -> str:
        return " / ".join(str(p[k]) for k in ("p50", "p90", "p99", "max") if k in p) or "-"

    def requests(per_pod: dict[str, float]) -> str:
        return ", ".join(f"{k} {v}" for k, v in per_pod.items())

    def watch_events(run: dict[str, Any]) -> str:
        """Per managed pod, the unmanaged 10 %'s events counted in, over every operator; '-' where
        an operator did not count them (results older than the counter, or older checkouts)."""
        per_pod = [o.get("watch_events_per_pod") for o in run.get("operators", ())]
        if not per_pod or None in per_pod:
            return "-"
        events = sum(v * o["pods"] for v, o in zip(per_pod, run["operators"], strict=True))
        return str(round(events / max(run["pods"], 1), 2))

    for r in results["scale"]:
        lines.append(
            f"| {r['pods']:,} | {r.get('finish', 'ExitCodes')}{_source(r)} | {r.get('releases', 1)}"
            f" | {cell(r['reaction_own_ms'])} | {cell(r['reaction_api_ms'])}"
            f" | {cell(r.get('primary_end_to_terminal_ms', {}))}"
            f" | {r['first_primary_end_to_all_terminal_s']} s"
            f" | {r['operator_peak_rss_mib']} MiB | {r.get('operator_cpu_ms_per_pod', '-')} ms"
            f" | {watch_events(r)} | {r['execs_per_sidecar']['max']}"
            f" | {requests(r['requests_per_pod'])} |"
        )
        if r.get("releases", 1) > 1:
            for o in r["operators"]:
                lines.append(
                    f"| ↳ {o['pods']:,} | | {o['release']} ({len(o['namespaces'])} namespaces)"
                    f" | {cell(o['reaction_own_ms'])} | | | | {o['peak_rss_mib']} MiB"
                    f" | {o['cpu_ms_per_pod']} ms | {_or_dash(o.get('watch_events_per_pod'))} |"
                    f" | {requests(o['requests_per_pod'])} |"
                )
    for r in results.get("idle", []):
        lines += [
            "",
            f"Idle: {r['idle_pods']:,} watched Job pods that need nothing: RSS {r['rss_mib']} MiB"
            f" (peak {r['peak_rss_mib']} MiB), CPU {r['cpu_s']} s over {r['seconds']:g} s"
            f" = {r['cpu_percent_of_a_core']} % of a core.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, action="append", default=[])
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument(
        "--finish",
        action="append",
        choices=FINISHES,
        default=[],
        help="the path to measure, repeatable; default: both, Phase first, for each --pods",
    )
    parser.add_argument(
        "--releases",
        type=int,
        default=1,
        help="operators sharing each burst, each on its own namespaces and peering (default 1: "
        "one cluster-wide operator, as in earlier runs)",
    )
    parser.add_argument(
        "--release-namespaces", type=int, default=2, help="namespaces per release (--releases > 1)"
    )
    parser.add_argument("--idle", type=int, default=0, help="idle run with this many pods")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--idle-padding-kib",
        type=int,
        default=0,
        help="an annotation of this many KiB on every idle pod (the API allows 256 KiB in all)",
    )
    parser.add_argument(
        "--operator-source",
        type=Path,
        action="append",
        default=[],
        help="the operator's source root (another checkout's operator/), to compare commits in "
        "one run; repeatable, each run once per source in the order given, so A B A B "
        "interleaves them (default: this checkout's)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="py-spy the operator")
    parser.add_argument(
        "--operator-flag",
        action="append",
        default=[],
        help="passed to the operator, e.g. --operator-flag=--exec-concurrency=16",
    )
    args = parser.parse_args(argv)
    finishes = args.finish or list(FINISHES)
    with quiet_cluster() as (layout, kube):
        # kwok reads its stages once: restarted if it runs with other stages than these.
        kwok.start(layout)
        logs = Path(tempfile.mkdtemp(prefix="tandem-scale-"))
        results: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "scale": [],
            "idle": [],
            "operator_logs": str(logs),
        }
        sources: list[Path | None] = args.operator_source or [None]
        runs = itertools.product(args.pods, finishes, sources)
        for number, (pods, finish, source) in enumerate(runs, 1):
            # A directory per run: a source given twice (A B A B) must not overwrite its logs.
            (run_logs := logs / f"run{number}").mkdir()
            results["scale"].append(
                run_scale(
                    kube,
                    layout,
                    pods,
                    args.window,
                    run_logs,
                    finish=finish,
                    releases=args.releases,
                    per_release=args.release_namespaces,
                    profile=args.profile,
                    operator_flags=tuple(args.operator_flag),
                    source=source,
                )
            )
            print(json.dumps(results["scale"][-1], indent=2), flush=True)
        for number, source in enumerate(sources if args.idle else (), 1):
            (idle_logs := logs / f"idle{number}").mkdir()
            results["idle"].append(
                run_idle(
                    kube,
                    layout,
                    args.idle,
                    args.idle_seconds,
                    idle_logs,
                    padding_kib=args.idle_padding_kib,
                    source=source,
                )
            )
            print(json.dumps(results["idle"][-1], indent=2), flush=True)
        table = markdown(results)
        print("\n" + table)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            args.json.with_suffix(".md").write_text(table)
        return 0


if __name__ == "__main__":
    sys.exit(main())
