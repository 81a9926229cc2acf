"""A small test client: kubectl at the cluster's version, JSON in and out, and polling waits.

Tests read the cluster the way an operator on call would, through kubectl, so what they assert is
what a person would see.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Kube:
    def __init__(self, kubectl: Path, kubeconfig: Path, namespace: str = "default") -> None:
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, namespaced: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.kubectl), f"--kubeconfig={self.kubeconfig}"]
        if namespaced:
            argv.append(f"--namespace={self.namespace}")
        done = subprocess.run(
            [*argv, *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def in_namespace(self, namespace: str) -> Kube:
        return Kube(self.kubectl, self.kubeconfig, namespace)

    def apply(self, *objects: dict[str, Any]) -> None:
        items = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.run("apply", "-f", "-", stdin=json.dumps(items))

    def create(self, obj: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", stdin=json.dumps(obj), check=check)

    def get(self, kind: str, name: str = "", selector: str = "") -> Any:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.run(*args).stdout)

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list(self.get("pods", selector=selector)["items"])

    def job_pods(self, job: str) -> list[dict[str, Any]]:
        return self.pods(f"batch.kubernetes.io/job-name={job}")

    def wait_job_pods(
        self, job: str, count: int = 1, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Waits until Job JOB has at least COUNT pods; returns them, oldest first."""

        def probe() -> list[dict[str, Any]] | None:
            pods = self.job_pods(job)
            return pods if len(pods) >= count else None

        pods = wait_for(f"{count} pod(s) of Job {job}", probe, timeout)
        return sorted(pods, key=lambda p: str(p["metadata"]["creationTimestamp"]))

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        items = self.get("events")["items"]
        return [
            e
            for e in items
            if e["involvedObject"].get("kind") == kind and e["involvedObject"].get("name") == name
        ]

    def reasons(self, kind: str, name: str) -> list[str]:
        return [e["reason"] for e in self.events(kind, name)]

    def wait_pod(
        self,
        name: str,
        what: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Polls pod NAME until PREDICATE holds for it; returns the pod."""

        def probe() -> dict[str, Any] | None:
            pod = self.get("pod", name)
            return pod if predicate(pod) else None

        return wait_for(f"pod {name}: {what}", probe, timeout)

    def wait_job(self, name: str, timeout: float = 90.0) -> str:
        """Waits for Job NAME to be Complete or Failed; returns which."""
        return wait_for(
            f"job {name} to finish", lambda: job_condition(self.get("job", name)), timeout
        )

    def wait_for_reasons(
        self, kind: str, name: str, *reasons: str, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Waits until Events with every one of REASONS exist on the object; returns its Events."""

        def probe() -> list[dict[str, Any]] | None:
            events = self.events(kind, name)
            seen = {e["reason"] for e in events}
            return events if set(reasons) <= seen else None

        return wait_for(f"events {reasons} on {kind} {name}", probe, timeout)

    def pod_history(
        self,
        name: str,
        what: str,
        until: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
        interval: float = 0.5,
    ) -> list[dict[str, Any]]:
        """Reads pod NAME every INTERVAL until UNTIL holds for it; returns every body read, oldest
        first (the last one satisfies UNTIL). For asserting what held all along, not just at the
        end."""
        seen: list[dict[str, Any]] = []

        def probe() -> list[dict[str, Any]] | None:
            seen.append(self.get("pod", name))
            return seen if until(seen[-1]) else None

        return wait_for(f"pod {name}: {what}", probe, timeout, interval)

    def exec(self, pod: str, container: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.run("exec", pod, "-c", container, "--", *argv, check=False)


class PhaseWatch:
    """`kubectl get pods --watch` in a namespace, started before the test's pods exist: every phase
    each pod was seen in, in order, as a tool that watches pods (a dashboard, Airflow) sees them.
    Opening waits until the API server has answered the watch, so no event is missed."""

    def __init__(self, kube: Kube, timeout: float = 30.0) -> None:
        template = '{.metadata.name}{" "}{.status.phase}{"\\n"}'
        self._process = subprocess.Popen(
            [
                str(kube.kubectl),
                f"--kubeconfig={kube.kubeconfig}",
                f"--namespace={kube.namespace}",
                "get",
                "pods",
                "--watch",
                "-o",
                f"jsonpath={template}",
                "-v=6",  # logs the watch request's answer: the watch is open
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._seen: list[tuple[str, str, float]] = []
        self._open = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._log, daemon=True).start()
        if not self._open.wait(timeout):
            self.close()
            raise AssertionError(f"kubectl's pod watch did not open in {timeout:g}s")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            name, _, phase = line.strip().partition(" ")
            self._seen.append((name, phase, time.monotonic()))

    def _log(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            # `"Response" verb="GET" url="...&watch=true" status="200 OK"` (kubectl 1.34).
            if "watch=true" in line and "200 OK" in line:
                self._open.set()

    def pods(self) -> list[str]:
        """Every pod the watch saw, in the order first seen (deleted ones too)."""
        return list(dict.fromkeys(name for name, _, _ in list(self._seen)))

    def phases(self, pod: str) -> list[str]:
        """POD's phases as the watch saw them, repeats folded."""
        seen = [phase for name, phase, _ in list(self._seen) if name == pod]
        return [p for i, p in enumerate(seen) if i == 0 or seen[i - 1] != p]

    def put_backs(self, pod: str) -> list[float]:
        """Seconds POD spent each time it was seen back in a phase that is not terminal after
        its first terminal one; one still open counts until now."""
        spans, since = [], None
        terminal_seen = False
        for name, phase, at in list(self._seen):
            if name != pod:
                continue
            terminal = phase in ("Succeeded", "Failed")
            if terminal and since is not None:
                spans.append(at - since)
                since = None
            elif not terminal and terminal_seen and since is None:
                since = at
            terminal_seen = terminal_seen or terminal
        return spans + ([time.monotonic() - since] if since is not None else [])

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def finished_at(pod: dict[str, Any], name: str) -> float | None:
    """When container NAME's current run ended (epoch seconds; the API keeps whole seconds)."""
    terminated = container_state(pod, name).get("state", {}).get("terminated")
    if terminated is None:
        return None
    stamp = str(terminated["finishedAt"]).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(stamp).timestamp()


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.5
) -> T:
    """Polls PROBE until it returns something truthy; fails with WHAT and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def all_running(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or ()
    return bool(statuses) and all("running" in s.get("state", {}) for s in statuses)


def container_state(pod: dict[str, Any], name: str) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or ():
        if status["name"] == name:
            return dict(status)
    return {}


def exit_code(pod: dict[str, Any], name: str) -> int | None:
    terminated = container_state(pod, name).get("state", {}).get("terminated")
    return None if terminated is None else int(terminated["exitCode"])


def job_condition(job: dict[str, Any]) -> str | None:
    """`Complete` or `Failed` once the Job has that condition, else None."""
    for condition in job.get("status", {}).get("conditions") or ():
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return str(condition["type"])
    return None


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of type KIND on OBJ (a pod, a Job), or None."""
    for found in obj.get("status", {}).get("conditions") or ():
        if found["type"] == kind:
            return dict(found)
    return None
