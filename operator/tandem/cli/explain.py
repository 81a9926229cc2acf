"""`tandem explain POD`: the command a person runs when a Job will not finish."""

from __future__ import annotations

import json
import sys

from tandem.adapters import Reads, load_configuration
from tandem.core import parse_pod
from tandem.core.explain import Explanation, explain


def render(found: Explanation) -> str:
    lines = [
        f"Pod {found.namespace}/{found.pod}: {found.phase}",
        f"Managed by Tandem: {'yes' if found.managed else 'no'} ({found.why_managed})",
        "Containers:",
    ]
    for c in found.containers:
        code = "" if c.exit_code is None else f", exit {c.exit_code}"
        restarts = f", {c.restarts} restarts" if c.restarts else ""
        lines.append(f"  {c.name:<20} {c.role:<8} {c.state}{code}{restarts}")
    lines.append("What Tandem did:" if found.events else "What Tandem did: nothing yet")
    lines += [f"  {e.time}  {e.type:<7} {e.reason}: {e.message}" for e in found.events]
    lines.append(f"Now: {found.status}")
    return "\n".join(lines)


def run(pod: str, namespace: str, output: str, kubeconfig: str | None) -> int:
    reads = Reads(load_configuration(kubeconfig))
    body = reads.pod(namespace, pod)
    if body is None:
        print(f"tandem explain: pod {namespace}/{pod} not found", file=sys.stderr)
        return 1
    view = parse_pod(body)
    found = explain(
        view, reads.sidecar_policies(namespace), reads.events_about(namespace, view.uid)
    )
    print(json.dumps(found.as_dict(), indent=2) if output == "json" else render(found))
    return 0
