"""`tandem explain POD`: the command a person runs when a Job will not finish."""

from __future__ import annotations

import json
import sys
import unicodedata

from tandem.adapters import Reads
from tandem.core import parse_pod
from tandem.core.explain import Explanation, explain

_UNPRINTABLE = ("Cc", "Cf", "Zl", "Zp")
"""Unicode categories a terminal acts on instead of showing: C0 and C1 controls (ESC, CSI, BEL,
CR, LF, DEL), format characters (bidirectional overrides) and line and paragraph separators."""


def printable(value: object) -> str:
    """VALUE as text with every control character spelled out (`\\x1b`, `\\u202e`): what the API
    returns is anyone's to write (an Event whose reportingComponent is tandem, a pod's name, a
    container state's reason), and must not move the cursor, retitle the terminal, or start a
    line of its own."""
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if unicodedata.category(ch) in _UNPRINTABLE
        else ch
        for ch in str(value)
    )


def render(found: Explanation) -> str:
    """The text form; every value from the API goes through `printable`. (The JSON form needs
    no such care: json.dumps escapes control characters itself.)"""
    p = printable
    lines = [
        f"Pod {p(found.namespace)}/{p(found.pod)}: {p(found.phase)}",
        f"Managed by Tandem: {'yes' if found.managed else 'no'} ({p(found.why_managed)})",
        "Containers:",
    ]
    for c in found.containers:
        code = "" if c.exit_code is None else f", exit {c.exit_code}"
        restarts = f", {c.restarts} restarts" if c.restarts else ""
        lines.append(f"  {p(c.name):<20} {c.role:<8} {p(c.state)}{code}{restarts}")
    lines.append("What Tandem did:" if found.events else "What Tandem did: nothing yet")
    lines += [f"  {p(e.time)}  {p(e.type):<7} {p(e.reason)}: {p(e.message)}" for e in found.events]
    lines.append(f"Now: {p(found.status)}")
    return "\n".join(lines)


def run(pod: str, namespace: str, output: str, kubeconfig: str | None) -> int:
    reads = Reads(kubeconfig)
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
