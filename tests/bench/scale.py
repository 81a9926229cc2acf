"""Benchmark: Tandem at scale on kwok's fake node, and its idle cost. Prints figures only.

    PYTHONPATH=deploy/local:operator .venv/bin/python -m tests.bench.scale \\
        --pods 1000 --pods 10000 --idle 10000 --json tests/bench/results/scale.json

Per run of N Job pods (plus 10 % more that Tandem does not manage), whose primaries all end
within --window seconds of one moment chosen after every pod runs (kwok's stage), and whose
sidecars end when Tandem's exec reaches them (tests/kwok_workload.py):
  - reaction latency, watch event -> stop started: exact, from the operator's log line per pod,
    and estimated from its own histogram tandem_reaction_seconds; and as the API server saw it,
    kwok's status write that ended the primary -> the operator's exec (audit log);
  - time from the first primary's end until every managed pod is terminal;
  - the operator's peak RSS and CPU seconds (/proc), and exec requests per sidecar (kwok's record);
  - the operator's API requests by verb and resource, per pod handled (audit log), and any request
    that touched a pod needing no action.
Idle: N managed Job pods whose primaries keep running, watched; RSS and CPU over 60 s once settled.
"""

from __future__ import annotations

import argparse
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

from localcluster import Layout, supervisor

from ..kube import Kube, wait_for
from ..kwok_workload import ExecAnswerer, create_jobs, kwok_job, parse_time, peak_rss_and_cpu
from ..operator_process import ROOT, start_operator, stop_operator
from . import new_namespace, quiet_cluster

_REACTION = re.compile(r"pod (\S+)/(\S+): stopping .*, ([\d.]+) ms after the watch event")
_BUCKET = r'{}_bucket\{{le="([^"]+)"(?:,path="exec")?\}} ([\d.e+]+)'
OPERATOR_FLAGS = ("--sweep-interval=60", "--log-format=text")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 1)}


def histogram_percentiles(metrics: str, name: str) -> dict[str, float]:
    """p50/p90/p99 in ms of histogram NAME (one label set), from its cumulative buckets,
    interpolated linearly inside a bucket."""
    buckets = [
        (float("inf") if le == "+Inf" else float(le), float(n))
        for le, n in re.findall(_BUCKET.format(name), metrics)
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


def _audit(layout: Layout, offset: int) -> list[dict[str, Any]]:
    with (layout.logs / "audit.log").open() as log:
        log.seek(offset)
        return [json.loads(line) for line in log if line.strip()]


def _analyse_audit(
    entries: list[dict[str, Any]], namespace: str, unmanaged: set[str]
) -> dict[str, Any]:
    requests: Counter[str] = Counter()
    primary_ended: dict[str, float] = {}
    execs: dict[str, float] = {}
    touched_unmanaged: Counter[str] = Counter()
    seen: set[str] = set()
    for entry in entries:
        if entry["auditID"] in seen:
            continue  # a long-running request (exec) is logged when it starts and when it ends
        seen.add(entry["auditID"])
        ref = entry.get("objectRef") or {}
        if ref.get("namespace") != namespace:
            continue
        user = entry["user"]["username"]
        resource = ref.get("resource", "") + (
            f"/{ref['subresource']}" if ref.get("subresource") else ""
        )
        name = ref.get("name", "")
        if user == "kwok":
            if resource == "pods/status" and name not in execs:
                primary_ended[name] = parse_time(entry["stageTimestamp"])
            continue
        if user != "tandem-operator":
            continue
        requests[f"{entry['verb']} {resource}"] += 1
        if resource.startswith("pods") and name in unmanaged:
            touched_unmanaged[f"{entry['verb']} {resource}"] += 1
        if resource == "pods/exec" and name not in execs:
            execs[name] = parse_time(entry["requestReceivedTimestamp"])
    reactions = [
        (execs[name] - primary_ended[name]) * 1000 for name in execs if name in primary_ended
    ]
    ends = sorted(primary_ended[name] for name in execs if name in primary_ended)
    return {
        "primary_ends_spread_s": round(ends[-1] - ends[0], 1) if ends else None,
        "requests": requests,
        "reaction_api_ms": percentiles(reactions),
        "reaction_api_samples_ms": [round(r, 1) for r in reactions],
        "primary_ended": primary_ended,
        "touched_unmanaged": dict(touched_unmanaged),
    }


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


def _new_namespace(kube: Kube, prefix: str) -> Kube:
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
    return new_namespace(kube, prefix)


def run_scale(
    kube: Kube,
    layout: Layout,
    pods: int,
    window: float,
    logs: Path,
    *,
    profile: bool = False,
    operator_flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    ns = _new_namespace(kube, "scale")
    extra = pods // 10
    run = {"bench.tandem.dev/run": ns.namespace}  # this run's operator sees no other Job pods
    operator = start_operator(
        layout,
        logs / f"operator-{pods}.log",
        *OPERATOR_FLAGS,
        *operator_flags,
        f"--pod-selector=bench.tandem.dev/run={ns.namespace}",
    )
    profiler = None
    if profile:
        profiler = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "py-spy"),
                "record",
                "--nonblocking",
                "--threads",
                "--format=raw",
                f"--output={logs / f'profile-{pods}.txt'}",
                f"--pid={operator.process.pid}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    answerer = ExecAnswerer(layout, ns.namespace)
    audit_offset = (layout.logs / "audit.log").stat().st_size
    _, _, cpu_before = peak_rss_and_cpu(operator.process.pid)
    components_before = _cpu_of_components(layout)
    try:
        created = time.time()
        first_end = created + 30 + pods * 0.05  # after every pod runs (checked below)
        create_jobs(
            ns,
            [
                kwok_job(f"j{i:05d}", i, first_end + random.uniform(0, window), labels=run)
                for i in range(pods)
            ]
            + [
                kwok_job(f"u{i:05d}", i, first_end, managed=False, labels=run)
                for i in range(pods, pods + extra)
            ],
        )
        created_in = time.time() - created

        def running() -> bool:
            return _count_running(ns) == pods + extra

        wait_for("every pod running", running, timeout=first_end - time.time() + 120, interval=2)
        answerer.prefetch()
        all_running = time.time()
        # CPU is split at the first primary's end: creating and starting the pods is the Job
        # controller's, the scheduler's and kwok's work, not Tandem's.
        time.sleep(max(0.0, first_end - time.time() - 1))
        _, _, cpu_at_burst = peak_rss_and_cpu(operator.process.pid)
        components_at_burst = _cpu_of_components(layout)

        # The answerer's own record, not a listing: listing 10,000 pods every few seconds would
        # load the API server more than Tandem does.
        wait_for(
            "every managed pod answered",
            lambda: len(answerer.answered) >= pods,
            timeout=window + 300 + pods * 0.1,
            interval=1,
        )
        rss, peak, cpu_after = peak_rss_and_cpu(operator.process.pid)
        components_after = _cpu_of_components(layout)
        metrics = operator.metrics()
        time.sleep(3)  # the audit log is written asynchronously
    finally:
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        stop_operator(operator)
        answerer.close()
    listing = _pods(ns)
    phases = Counter(
        p["status"].get("phase") for p in listing if p["metadata"]["name"].startswith("j")
    )
    unmanaged = {p["metadata"]["name"] for p in listing if p["metadata"]["name"].startswith("u")}
    audit = _analyse_audit(_audit(layout, audit_offset), ns.namespace, unmanaged)
    own = [
        float(m.group(3))
        for m in _REACTION.finditer(operator.log_text())
        if m.group(1) == ns.namespace
    ]
    last_terminal = max(answerer.answered.values(), default=float("nan"))
    # Per pod, end to end: kwok's write that ended the primary -> the sidecar's end, written by
    # the answerer once Tandem's exec reached the fake node.
    stopped_in = [
        (answered - audit["primary_ended"][name]) * 1000
        for name, answered in answerer.answered.items()
        if name in audit["primary_ended"]
    ]
    _delete(kube, ns)
    execs = list(answerer.execs.values())
    return {
        "pods": pods,
        "unmanaged_pods": extra,
        "window_s": window,
        "created_in_s": round(created_in, 1),
        "all_running_before_first_end": all_running < first_end,
        "phases": dict(phases),
        "reaction_own_ms": percentiles(own),
        "reaction_histogram_ms": histogram_percentiles(metrics, "tandem_reaction_seconds"),
        "exec_duration_histogram_ms": histogram_percentiles(
            metrics, "tandem_action_duration_seconds"
        ),
        "reaction_api_ms": audit["reaction_api_ms"],
        "samples_ms": {
            "reaction_own": [round(v, 1) for v in own],
            "reaction_api": audit["reaction_api_samples_ms"],
        },
        "primary_end_to_sidecar_ended_ms": percentiles(stopped_in),
        "first_primary_end_to_all_terminal_s": round(last_terminal - first_end, 1),
        "operator_rss_mib": round(rss, 1),
        "operator_peak_rss_mib": round(peak, 1),
        "operator_cpu_s": round(cpu_after - cpu_before, 1),
        "operator_cpu_burst_s": round(cpu_after - cpu_at_burst, 1),
        "cluster_cpu_setup_s": _cpu_delta(components_before, components_at_burst),
        "cluster_cpu_burst_s": _cpu_delta(components_at_burst, components_after),
        "operator_flags": list(operator_flags),
        "primary_ends_spread_s": audit["primary_ends_spread_s"],
        "execs_per_sidecar": {
            "max": max(execs, default=0),
            "total": sum(execs),
            "sidecars": len(execs),
        },
        "requests_per_pod": {k: round(v / pods, 3) for k, v in sorted(audit["requests"].items())},
        "requests_touching_unmanaged_pods": audit["touched_unmanaged"],
        "answer_errors": answerer.errors[:5],
    }


def run_idle(kube: Kube, layout: Layout, pods: int, seconds: float, logs: Path) -> dict[str, Any]:
    ns = _new_namespace(kube, "idle")
    far = time.time() + 10 * 24 * 3600  # primaries that never end during the run
    run = {"bench.tandem.dev/run": ns.namespace}
    # Managed pods: Tandem parses each one's policy, where an unmanaged pod is skipped sooner.
    create_jobs(ns, [kwok_job(f"i{i:05d}", i, far, labels=run) for i in range(pods)])
    wait_for("every idle pod running", lambda: _count_running(ns) == pods, timeout=900, interval=5)
    operator = start_operator(
        layout,
        logs / f"operator-idle-{pods}.log",
        *OPERATOR_FLAGS,
        f"--pod-selector=bench.tandem.dev/run={ns.namespace}",
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
        "seconds": seconds,
        "rss_mib": round(rss, 1),
        "peak_rss_mib": round(peak, 1),
        "cpu_s": round(cpu, 2),
        "cpu_percent_of_a_core": round(100 * cpu / seconds, 2),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Scale benchmark, {results['date']}, {results['machine']}. "
        "Reaction in ms as p50 / p90 / p99 / max.",
        "",
        "| pods | reaction (own log) | reaction (own histogram, p50/p90/p99) "
        "| reaction (API audit) | first primary end → all terminal | peak RSS | CPU | "
        "max execs per sidecar | requests per pod |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(p: dict[str, float]) -> str:
        return " / ".join(str(p[k]) for k in ("p50", "p90", "p99", "max") if k in p) or "-"

    for r in results["scale"]:
        requests = ", ".join(f"{k} {v}" for k, v in r["requests_per_pod"].items())
        lines.append(
            f"| {r['pods']:,} | {cell(r['reaction_own_ms'])} | {cell(r['reaction_histogram_ms'])}"
            f" | {cell(r['reaction_api_ms'])} | {r['first_primary_end_to_all_terminal_s']} s"
            f" | {r['operator_peak_rss_mib']} MiB | {r['operator_cpu_s']} s"
            f" | {r['execs_per_sidecar']['max']} | {requests} |"
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
    parser.add_argument("--idle", type=int, default=0, help="idle run with this many pods")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="py-spy the operator")
    parser.add_argument(
        "--operator-flag",
        action="append",
        default=[],
        help="passed to the operator, e.g. --operator-flag=--exec-concurrency=16",
    )
    args = parser.parse_args(argv)
    with quiet_cluster() as (layout, kube):
        logs = Path(tempfile.mkdtemp(prefix="tandem-scale-"))
        results: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "scale": [],
            "idle": [],
            "operator_logs": str(logs),
        }
        for pods in args.pods:
            results["scale"].append(
                run_scale(
                    kube,
                    layout,
                    pods,
                    args.window,
                    logs,
                    profile=args.profile,
                    operator_flags=tuple(args.operator_flag),
                )
            )
            print(json.dumps(results["scale"][-1], indent=2), flush=True)
        if args.idle:
            results["idle"].append(run_idle(kube, layout, args.idle, args.idle_seconds, logs))
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
