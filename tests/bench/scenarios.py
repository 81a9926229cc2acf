"""Benchmark: the e2e scenarios on the real kubelet, timed. Prints figures; asserts nothing.

    .venv/bin/python -m tests.bench.scenarios [--pods N] [--json FILE]

Per scenario, over N Jobs run at once (medians, with the maximum in brackets):
  - primary finishedAt -> sidecar finishedAt, and -> the pod's terminal phase (the API's own
    timestamps; they have one-second resolution, so read them as whole seconds);
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
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from localcluster import Layout, cluster

from ..conftest import ROOT, start_operator, stop_operator
from ..kube import Kube, container_state, job_condition, wait_for
from ..manifests import EXITS_0_ON_TERM, HAPROXY, container, job, pod_spec, primary

SCENARIOS: dict[str, dict[str, Any]] = {
    "never/success/trap-exit-0": {"policy": "Never", "exit": 0, "sidecar": EXITS_0_ON_TERM},
    "never/failure/trap-exit-0": {"policy": "Never", "exit": 3, "sidecar": EXITS_0_ON_TERM},
    "never/success/haproxy": {"policy": "Never", "exit": 0, "sidecar": None},
    "onfailure/success/trap-exit-0": {"policy": "OnFailure", "exit": 0, "sidecar": EXITS_0_ON_TERM},
}
_REACTION = re.compile(r"pod (\S+)/(\S+): stopping .*, ([\d.]+) ms after the watch event")


def _time(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _terminal_at(pod: dict[str, Any]) -> str:
    """When the pod left Running: the Ready condition's last transition to False."""
    for condition in pod["status"].get("conditions") or ():
        if condition["type"] == "Ready":
            return str(condition["lastTransitionTime"])
    return ""


def _audit(layout: Layout, since: float) -> list[dict[str, Any]]:
    entries = []
    for line in (layout.logs / "audit.log").read_text().splitlines():
        entry = json.loads(line)
        if _time(entry["stageTimestamp"]).timestamp() >= since:
            entries.append(entry)
    return entries


def _api_reactions(audit: list[dict[str, Any]], namespace: str) -> list[float]:
    """Per pod: the operator's first exec, minus the kubelet's last status write before it."""
    writes: dict[str, list[datetime.datetime]] = {}
    execs: dict[str, datetime.datetime] = {}
    for entry in audit:
        ref = entry.get("objectRef") or {}
        if ref.get("namespace") != namespace or ref.get("resource") != "pods":
            continue
        at = _time(entry["requestReceivedTimestamp"])
        if ref.get("subresource") == "status" and entry["user"]["username"].startswith(
            "system:node:"
        ):
            writes.setdefault(ref["name"], []).append(_time(entry["stageTimestamp"]))
        elif ref.get("subresource") == "exec" and ref["name"] not in execs:
            execs[ref["name"]] = at
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
    namespace = f"bench-{secrets.token_hex(3)}"
    kube.run("create", "namespace", namespace, namespaced=False)
    ns = kube.in_namespace(namespace)
    wait_for(
        "default service account",
        lambda: ns.run("get", "sa", "default", check=False).returncode == 0,
    )
    sidecar = (
        container("proxy", spec["sidecar"])
        if spec["sidecar"]
        else container("proxy", image=HAPROXY)
    )
    started = time.time()
    ns.apply(
        *(
            job(
                f"j{i}",
                pod_spec([primary(exit_code=spec["exit"], after=2), sidecar], spec["policy"]),
                annotations={"tandem.dev/primary": "main"},
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
    to_sidecar, to_terminal = [], []
    for pod in ns.get("pods")["items"]:
        main = container_state(pod, "main")["state"].get("terminated") or container_state(
            pod, "main"
        ).get("lastState", {}).get("terminated")
        proxy = container_state(pod, "proxy")["state"].get("terminated")
        if main and proxy:
            to_sidecar.append(
                (_time(proxy["finishedAt"]) - _time(main["finishedAt"])).total_seconds()
            )
        if main and _terminal_at(pod):
            to_terminal.append(
                (_time(_terminal_at(pod)) - _time(main["finishedAt"])).total_seconds()
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
    args = parser.parse_args(argv)
    layout = Layout()
    if not cluster.is_up(layout):
        cluster.build(layout)
        cluster.up(layout)
    kube = Kube(layout.kubectl, layout.admin_kubeconfig)
    kube.run("apply", "-f", str(ROOT / "crds"), namespaced=False)
    kube.run("apply", "-f", str(ROOT / "deploy" / "base" / "rbac.yaml"), namespaced=False)
    binding = kube.run(
        "create",
        "clusterrolebinding",
        "tandem-operator-user",
        "--clusterrole=tandem",
        "--user=tandem-operator",
        "--dry-run=client",
        "-o",
        "json",
        namespaced=False,
    ).stdout
    kube.run("apply", "-f", "-", stdin=binding, namespaced=False)
    log = Path(tempfile.mkdtemp()) / "operator.log"
    operator = start_operator(layout, log)
    try:
        results = [run_scenario(kube, layout, name, args.pods, log) for name in SCENARIOS]
    finally:
        stop_operator(operator)
    print(
        f"\n{'scenario':32} {'pods':>4}  {'primary->sidecar s':>18}  {'primary->pod end s':>18}"
        f"  {'reaction (own) ms':>18}  {'reaction (API) ms':>18}"
    )
    for r in results:
        print(
            f"{r['scenario']:32} {r['pods']:>4}  {_cell(r['primary_to_sidecar_exit_s']):>18}  "
            f"{_cell(r['primary_to_pod_terminal_s']):>18}  {_cell(r['reaction_operator_ms']):>18}"
            f"  {_cell(r['reaction_api_ms']):>18}"
        )
    print("\nAPI requests by the operator, per pod:")
    for r in results:
        print(f"  {r['scenario']:32} {r['requests_per_pod']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
