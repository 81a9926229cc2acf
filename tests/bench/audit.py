"""The API server's audit log as the scale benchmark reads it: what Tandem, and the fake node's
kubelet (kwok, and the exec answerer that stands in for it), did to each pod, and when.

The local cluster audits at Metadata level the operator's requests and the kubelets' pod status
patches (localcluster/components.py), so no request body is known: a kubelet write is placed by
time against Tandem's first request for the pod (its exec, or its phase write).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

OPERATOR = "tandem-operator"
KUBELET = "kwok"
ACTIONS = ("pods/exec", "pods/status")
"""Tandem's requests that act on a pod: a stop through exec, a phase written through status."""


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Request(NamedTuple):
    user: str
    verb: str
    resource: str
    """`pods`, `pods/status`, `events`, ...: the resource and its subresource."""
    namespace: str
    name: str
    received: float
    completed: float
    """stageTimestamp: when the response completed (for exec, when its stream started)."""
    code: int

    @property
    def key(self) -> str:
        return f"{self.verb} {self.resource}"


def request(entry: dict[str, Any]) -> Request:
    ref = entry.get("objectRef") or {}
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += f"/{ref['subresource']}"
    return Request(
        user=entry["user"]["username"],
        verb=entry["verb"],
        resource=resource,
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        received=parse_time(entry["requestReceivedTimestamp"]),
        completed=parse_time(entry["stageTimestamp"]),
        code=int((entry.get("responseStatus") or {}).get("code") or 0),
    )


def read_lines(lines: Iterable[str], namespaces: Iterable[str], seen: set[str]) -> list[Request]:
    """The requests in LINES (audit log lines) on objects in NAMESPACES, each once: a long-running
    request (exec) is logged when its response starts and again when it ends, under one auditID,
    which SEEN keeps across calls."""
    wanted = frozenset(namespaces)
    out = []
    for line in lines:
        # Most lines are other namespaces': skip them before parsing.
        if not line.strip() or not any(namespace in line for namespace in wanted):
            continue
        entry = json.loads(line)
        if entry["auditID"] in seen:
            continue
        seen.add(entry["auditID"])
        parsed = request(entry)
        if parsed.namespace in wanted:
            out.append(parsed)
    return out


class AuditTail:
    """The audit log from its current end on, read as it grows. The API server rotates it
    (--audit-log-maxsize): the renamed file is read to its end through the open handle, then the
    new one from its start."""

    def __init__(self, path: Path, namespaces: Iterable[str]) -> None:
        self.requests: list[Request] = []
        self._path = path
        self._namespaces = tuple(namespaces)
        self._seen: set[str] = set()
        self._file = path.open()
        self._file.seek(0, os.SEEK_END)
        self._partial = ""

    def poll(self) -> list[Request]:
        """Reads what was written since the last poll; returns all requests so far."""
        while True:
            text = self._file.read()
            if text:
                lines = (self._partial + text).split("\n")
                self._partial = lines.pop()  # a line still being written
                self.requests += read_lines(lines, self._namespaces, self._seen)
                continue
            if self._rotated():
                self._file.close()
                self._file = self._path.open()
                self._partial = ""
                continue
            return self.requests

    def _rotated(self) -> bool:
        try:
            return os.stat(self._path).st_ino != os.fstat(self._file.fileno()).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file

    def close(self) -> None:
        self._file.close()


@dataclasses.dataclass
class PodTimes:
    """One pod's path through the burst, in epoch seconds, as the API server saw it."""

    primary_ended: float | None = None
    """The fake kubelet's status write that ended the primary: its last one before Tandem acted."""
    acted: float | None = None
    """Tandem's first exec or phase write on the pod, received."""
    action: str = ""
    """`exec` or `phase`: what Tandem's first action was."""
    terminal: float | None = None
    """When the pod's phase became terminal: Tandem's first accepted phase write; without one, the
    kubelet's first write after Tandem acted (the exec path's answerer writes the phase)."""
    sidecar_ended: float | None = None
    """The kubelet's first status write after Tandem acted: the sidecar's end."""
    phase_writes: int = 0
    phase_writes_refused: int = 0


def job_of(namespace: str, pod: str) -> str:
    """`namespace/job` of a Job's pod, named `<job>-<five random characters>` by the Job
    controller (an Event on it is named `<pod>.<hex>`)."""
    return f"{namespace}/{pod.split('.', 1)[0].rsplit('-', 1)[0]}"


def pod_times(requests: Iterable[Request]) -> dict[tuple[str, str], PodTimes]:
    """Per pod (namespace, name) that Tandem acted on, its PodTimes."""
    kubelet: dict[tuple[str, str], list[Request]] = {}
    tandem: dict[tuple[str, str], list[Request]] = {}
    for r in requests:
        if r.resource == "pods/status" and r.user == KUBELET and r.verb == "patch":
            kubelet.setdefault((r.namespace, r.name), []).append(r)
        elif r.resource in ACTIONS and r.user == OPERATOR:
            tandem.setdefault((r.namespace, r.name), []).append(r)
    out = {}
    for pod, actions in tandem.items():
        first = min(actions, key=lambda r: r.received)
        times = PodTimes(
            acted=first.received, action="exec" if first.resource == "pods/exec" else "phase"
        )
        writes = [r for r in actions if r.resource == "pods/status"]
        times.phase_writes = len(writes)
        accepted = [r.completed for r in writes if 200 <= r.code < 300]
        times.phase_writes_refused = len(writes) - len(accepted)
        # Placed by when each request arrived: Tandem acts on the watch event of a write that the
        # API server received before, though it may log that write's completion a little later.
        before = [r for r in kubelet.get(pod, ()) if r.received <= first.received]
        after = [r for r in kubelet.get(pod, ()) if r.received > first.received]
        if before:
            times.primary_ended = max(before, key=lambda r: r.received).completed
        if after:
            times.sidecar_ended = min(r.completed for r in after)
        times.terminal = min(accepted) if accepted else times.sidecar_ended
        out[pod] = times
    return out


def tally(requests: Iterable[Request], namespaces: Iterable[str] | None = None) -> Counter[str]:
    """Tandem's requests by verb and resource, in NAMESPACES (all when None)."""
    wanted = None if namespaces is None else frozenset(namespaces)
    return Counter(
        r.key for r in requests if r.user == OPERATOR and (wanted is None or r.namespace in wanted)
    )
