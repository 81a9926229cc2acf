"""Benchmark: the e2e scenarios on the real kubelet, timed. Prints figures; asserts nothing.

    .venv/bin/python -m tests.bench.scenarios [--pods N] [--json FILE]

Per scenario, over N Jobs run at once (medians, with the maximum in brackets):
  - primary finishedAt -> sidecar finishedAt (the API's timestamps, one-second resolution), and
    -> the pod first seen in a terminal phase (polled every 0.25 s; finishedAt is truncated to the
    second, so this reads up to a second long);
  - the operator's reaction, two ways: its own timing (handler start -> stop started), and as the
    API server saw it (the kubelet's status write that ended the primary -> the operator's exec);
  - API requests the operator made per pod, by verb and resource, from the audit log.
Uses the running local cluster (or starts one) and starts its own operator.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from localcluster import Layout

from ..kube import Kube, container_state, job_condition, wait_for
from ..manifests import (
    EXITS_0_ON_TERM,
    HAPROXY,
    HTTPSTOP,
    SHELLLESS,
    SLEEP_FOREVER,
    container,
    job,
    pod_spec,
    primary,
)
from ..operator_process import start_operator, stop_operator
from . import new_namespace, quiet_cluster

EXIT_CODES = {"tandem.dev/finish": "ExitCodes"}
SCENARIOS: dict[str, dict[str, Any]] = {
    # Finish by phase (the default) against the exit-code path, the same sidecar (issue 15).
    "never/success/trap-exit-0": {"policy": "Never", "exit": 0, "sidecar": EXITS_0_ON_TERM},
    "exit-codes/never/success/trap-exit-0": {
        "policy": "Never",
        "exit": 0,
        "sidecar": EXITS_0_ON_TERM,
        "annotations": EXIT_CODES,
    },
    "never/failure/trap-exit-0": {"policy": "Never", "exit": 3, "sidecar": EXITS_0_ON_TERM},
    "never/success/haproxy": {"policy": "Never", "exit": 0, "sidecar": None},
    "onfailure/success/trap-exit-0": {"policy": "OnFailure", "exit": 0, "sidecar": EXITS_0_ON_TERM},
    # The baseline, without Tandem: the same sidecar as a native sidecar, which the kubelet stops.
    "native-sidecar/success/trap-exit-0": {
        "policy": "Never",
        "exit": 0,
        "sidecar": EXITS_0_ON_TERM,
        "native": True,
    },
    # One scenario per delivery path beyond plain exec (issue: stubborn sidecars).
    "path/helper/shell-less-usr1": {
        "policy": "Never",
        "annotations": EXIT_CODES,
        "exit": 0,
        # Its own user, which the helper takes: a helper may signal only its own user's processes.
        "container": container(
            "proxy",
            ["/sleeper", "--exit-on", "USR1", "0"],
            image=SHELLLESS,
            securityContext={"runAsUser": 1000},
        ),
        "actions": {"onSuccess": {"signal": "USR1"}},
    },
    "path/shared-pid/sleep-kill": {
        "policy": "Never",
        "annotations": EXIT_CODES,
        "exit": 3,
        "container": container("proxy", SLEEP_FOREVER),
        "pod": {"shareProcessNamespace": True},
        "actions": {"onFailure": {"signal": "KILL"}},
    },
    "path/http/preset": {
        "policy": "Never",
        "annotations": EXIT_CODES,
        "exit": 0,
        "container": container("proxy", image=HTTPSTOP, args=["--port", "9091"]),
        "actions": {"onSuccess": {"preset": "cloud-sql-proxy"}},
    },
}
_REACTION = re.compile(
    r"pod (\S+)/(\S+): (?:stopping|finishing) .*, ([\d.]+) ms after the watch event"
)


def _time(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class TerminalWatch:
    """Polls the namespace's pods and Jobs and notes when each pod was first seen in a terminal
    phase, and each Job with a terminal condition (by its pod): the API has no sub-second
    timestamp for either."""

    def __init__(self, ns: Kube) -> None:
        self.ns, self.seen = ns, {}  # type: tuple[Kube, dict[str, float]]
        self.jobs: dict[str, float] = {}
        """Pod name -> when its Job was first seen Complete or Failed."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            pods = self.ns.get("pods")["items"]
            for pod in pods:
                if pod["status"].get("phase") in ("Succeeded", "Failed"):
                    self.seen.setdefault(pod["metadata"]["name"], time.time())
            ended = {
                j["metadata"]["name"] for j in self.ns.get("jobs")["items"] if job_condition(j)
            }
            for pod in pods:
                if pod["metadata"]["labels"].get("batch.kubernetes.io/job-name") in ended:
                    self.jobs.setdefault(pod["metadata"]["name"], time.time())

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.seen


def _proxy_state(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod["status"].get("initContainerStatuses") or ():
        if status["name"] == "proxy":
            return dict(status)
    return container_state(pod, "proxy")


def _audit(layout: Layout, since: float) -> list[dict[str, Any]]:
    entries = []
    for line in (layout.logs / "audit.log").read_text().splitlines():
        entry = json.loads(line)
        if _time(entry["stageTimestamp"]).timestamp() >= since:
            entries.append(entry)
    return entries


def _api_reactions(audit: list[dict[str, Any]], namespace: str) -> list[float]:
    """Per pod: the operator's first exec or phase write, minus the kubelet's last status write
    before it."""
    writes: dict[str, list[datetime.datetime]] = {}
    execs: dict[str, datetime.datetime] = {}
    for entry in audit:
        ref = entry.get("objectRef") or {}
        if ref.get("namespace") != namespace or ref.get("resource") != "pods":
            continue
        at = _time(entry["requestReceivedTimestamp"])
        user = entry["user"]["username"]
        if ref.get("subresource") == "status" and user.startswith("system:node:"):
            writes.setdefault(ref["name"], []).append(_time(entry["stageTimestamp"]))
        elif user == "tandem-operator" and ref.get("subresource") in ("exec", "status"):
            execs.setdefault(ref["name"], at)  # its first exec or phase write
    reactions = []
    for pod, exec_at in execs.items():
        before = [w for w in writes.get(pod, []) if w <= exec_at]
        if before:
            reactions.append((exec_at - max(before)).total_seconds())
    return reactions


def _requests(audit: list[dict[str, Any]], namespace: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in audit:
        ref = entry.get("objectRef") or {}
        if (
            entry["user"]["username"] != "tandem-operator"
            or entry.get("stage") != "ResponseComplete"
        ):
            continue
        if ref.get("namespace") not in (namespace, None):
            continue
        resource = ref.get("resource", "?") + (
            f"/{ref['subresource']}" if ref.get("subresource") else ""
        )
        counts[f"{entry['verb']} {resource}"] += 1
    return counts


def run_scenario(kube: Kube, layout: Layout, name: str, pods: int, log: Path) -> dict[str, Any]:
    spec = SCENARIOS[name]
    ns = new_namespace(kube, "bench")
    namespace = ns.namespace
    if "container" in spec:
        sidecar = spec["container"]
    elif spec["sidecar"]:
        sidecar = container("proxy", spec["sidecar"])
    else:
        sidecar = container("proxy", image=HAPROXY)
    if "actions" in spec:
        ns.apply(
            {
                "apiVersion": "tandem.dev/v1alpha1",
                "kind": "SidecarPolicy",
                "metadata": {"name": "bench"},
                "spec": {
                    "selector": {},
                    "primaryContainers": ["main"],
                    "sidecars": [{"name": "proxy", **spec["actions"]}],
                },
            }
        )
    started = time.time()
    terminal = TerminalWatch(ns)
    if spec.get("native"):
        template = pod_spec(
            [primary(exit_code=spec["exit"], after=2)],
            spec["policy"],
            initContainers=[{**sidecar, "restartPolicy": "Always"}],
        )
    else:
        template = pod_spec(
            [primary(exit_code=spec["exit"], after=2), sidecar],
            spec["policy"],
            **spec.get("pod", {}),
        )
    ns.apply(
        *(
            job(
                f"j{i}",
                template,
                annotations={"tandem.dev/primary": "main", **spec.get("annotations", {})},
                backoff_limit=0,
            )
            for i in range(pods)
        )
    )
    wait_for(
        "every Job finished",
        lambda: (
            all(job_condition(j) for j in ns.get("jobs")["items"])
            and len(ns.get("jobs")["items"]) == pods
        ),
        timeout=180,
        interval=1,
    )
    terminal_at = terminal.stop()
    to_sidecar, to_terminal, to_job = [], [], []
    for pod in ns.get("pods")["items"]:
        main = container_state(pod, "main")["state"].get("terminated") or container_state(
            pod, "main"
        ).get("lastState", {}).get("terminated")
        proxy = _proxy_state(pod)["state"].get("terminated")
        if main and proxy:
            to_sidecar.append(
                (_time(proxy["finishedAt"]) - _time(main["finishedAt"])).total_seconds()
            )
        if main and pod["metadata"]["name"] in terminal_at:
            seen = terminal_at[pod["metadata"]["name"]]
            to_terminal.append(seen - _time(main["finishedAt"]).timestamp())
        if main and pod["metadata"]["name"] in terminal.jobs:
            to_job.append(
                terminal.jobs[pod["metadata"]["name"]] - _time(main["finishedAt"]).timestamp()
            )
    time.sleep(2)  # the audit log is written asynchronously
    audit = _audit(layout, started)
    own = [
        float(m.group(3)) / 1000
        for m in _REACTION.finditer(log.read_text())
        if m.group(1) == namespace
    ]
    kube.run("delete", "namespace", namespace, "--wait=false", namespaced=False)
    requests = _requests(audit, namespace)
    return {
        "scenario": name,
        "pods": pods,
        "primary_to_sidecar_exit_s": _summary(to_sidecar),
        "primary_to_pod_terminal_s": _summary(to_terminal),
        "primary_to_job_complete_s": _summary(to_job),
        "reaction_operator_ms": _summary([r * 1000 for r in own]),
        "reaction_api_ms": _summary([r * 1000 for r in _api_reactions(audit, namespace)]),
        "requests_per_pod": {k: round(v / pods, 2) for k, v in sorted(requests.items())},
    }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


def _cell(summary: dict[str, float]) -> str:
    return f"{summary['median']} [{summary['max']}]" if summary else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only these (repeatable); default: all",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="pods of an unreported first run, so that the figures are of a "
        "running operator, not of its first seconds",
    )
    args = parser.parse_args(argv)
    with quiet_cluster() as (layout, kube):
        log = Path(tempfile.mkdtemp()) / "operator.log"
        operator = start_operator(layout, log)
        try:
            if args.warmup:
                run_scenario(kube, layout, next(iter(SCENARIOS)), args.warmup, log)
            results = [
                run_scenario(kube, layout, name, args.pods, log)
                for name in args.scenario or SCENARIOS
            ]
        finally:
            stop_operator(operator)
        print(
            f"\n{'scenario':38} {'pods':>4}  {'primary->sidecar s':>18}  {'primary->pod end s':>18}"
            f"  {'primary->Job end s':>18}  {'reaction (own) ms':>18}  {'reaction (API) ms':>18}"
        )
        for r in results:
            print(
                f"{r['scenario']:38} {r['pods']:>4}  {_cell(r['primary_to_sidecar_exit_s']):>18}  "
                f"{_cell(r['primary_to_pod_terminal_s']):>18}  "
                f"{_cell(r['primary_to_job_complete_s']):>18}  "
                f"{_cell(r['reaction_operator_ms']):>18}"
                f"  {_cell(r['reaction_api_ms']):>18}"
            )
        print("\nAPI requests by the operator, per pod:")
        for r in results:
            print(f"  {r['scenario']:36} {r['requests_per_pod']}")
        by_name = {r["scenario"]: r for r in results}
        for measure in ("primary_to_job_complete_s", "primary_to_pod_terminal_s"):
            phase, codes, native = (
                by_name.get(name, {}).get(measure, {}).get("median")
                for name in (
                    "never/success/trap-exit-0",
                    "exit-codes/never/success/trap-exit-0",
                    "native-sidecar/success/trap-exit-0",
                )
            )
            if phase and native:
                print(
                    f"\n{measure}, medians: by phase {phase} s, by exit codes {codes} s, native "
                    f"sidecar {native} s; ratio phase/native {phase / native:.2f}"
                    + (f", exit codes/native {codes / native:.2f}" if codes else "")
                )
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0


if __name__ == "__main__":
    sys.exit(main())
