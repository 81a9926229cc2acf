"""Job pods on kwok's fake node, and the fake kubelet's answer to Tandem's exec.

kwok plays each pod's lifecycle from the stages in deploy/local/kwok/stages.yaml: the pod runs, and
its primary `main` ends at the time in its annotation. The sidecar, named after its slot
(`proxy-NNNNN`), keeps running until Tandem acts. Tandem acts in one of two ways:

- by phase (the default: the fake node says a kubelet that keeps an API-set phase): Tandem writes
  the pod's terminal phase with its annotation, and kwok's stage pod-api-phase-stops-containers
  ends the sidecar as that kubelet would, on its STOPSIGNAL (TERM): 0, since these sidecars trap
  TERM;
- by exit codes (`kwok_job(..., finish="ExitCodes")`): Tandem execs into the sidecar. kwok hands
  that exec to the shim, which records the slot and the command; `ExecAnswerer` reads those records
  and ends the sidecar with the code a sidecar that traps TERM would give (0 on TERM, 128+N on
  other signals), as the kubelet would report it.

Used by the scale benchmark and the chaos test.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes

from localcluster import Layout, kwok

from .kube import Kube

ENDS_AT = "kwok.tandem.dev/primary-ends-at"
EXIT_CODE = "kwok.tandem.dev/primary-exit-code"
SLOT = "kwok.tandem.dev/slot"
_KILL = re.compile(r"kill -s (\w+)")


def stamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat().replace("+00:00", "Z")


def kwok_job(
    name: str,
    slot: int,
    ends_at: float,
    *,
    exit_code: int = 0,
    managed: bool = True,
    labels: dict[str, str] | None = None,
    finish: str | None = None,
) -> dict[str, Any]:
    """A Job whose one pod lands on the fake node: primary `main`, sidecar `proxy-<slot>`; FINISH
    (`Phase` or `ExitCodes`) is its tandem.dev/finish annotation, none by default."""
    annotations = {ENDS_AT: stamp(ends_at), EXIT_CODE: str(exit_code)}
    if managed:
        annotations["tandem.dev/primary"] = "main"
    if finish is not None:
        annotations["tandem.dev/finish"] = finish
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "annotations": annotations,
                    "labels": {SLOT: f"{slot:05d}", **(labels or {})},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"tandem.dev/node": "fake"},
                    "tolerations": [
                        {"key": kwok.FAKE_NODE_ANNOTATION, "operator": "Exists"},
                    ],
                    "containers": [
                        {"name": "main", "image": "fake"},
                        {"name": kwok.slot_container(slot), "image": "fake"},
                    ],
                },
            },
        },
    }


def create_jobs(ns: Kube, jobs: Iterable[dict[str, Any]], chunk: int = 250) -> None:
    batch: list[dict[str, Any]] = []
    for job in jobs:
        batch.append(job)
        if len(batch) == chunk:
            ns.create({"apiVersion": "v1", "kind": "List", "items": batch})
            batch = []
    if batch:
        ns.create({"apiVersion": "v1", "kind": "List", "items": batch})


def sidecar_exit(signal_name: str) -> int:
    """A sidecar that traps TERM and exits 0; any other signal ends it with 128+N."""
    if signal_name == "TERM":
        return 0
    return 128 + int(signal.Signals[f"SIG{signal_name}"])


class ExecAnswerer:
    """Tails the shim's record of execs into fake pods and ends each sidecar as a kubelet would:
    one strategic-merge patch of the pod's status (the sidecar terminated, and the phase).

    It writes as user `kwok`, the fake node's kubelet, so the audit log records its writes with
    kwok's own, as it would a kubelet's: the benchmark times the sidecar's end and the pod's
    terminal phase from them. NAMESPACES: one, or several (pods' slots are unique across them)."""

    def __init__(self, layout: Layout, namespaces: str | Iterable[str], workers: int = 8) -> None:
        self.namespaces = (namespaces,) if isinstance(namespaces, str) else tuple(namespaces)
        self.execs: Counter[str] = Counter()  # slot -> execs seen
        self.answered: dict[str, float] = {}  # pod name -> when its status patch returned
        self.errors: list[str] = []
        self._api = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(str(layout.state / "kwok.kubeconfig"))
        )
        self._api.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = workers
        self._pods: dict[str, dict[str, Any]] = {}  # slot -> pod
        self._log = kwok.execs_log(layout)
        self._offset = self._log.stat().st_size
        self._pool = ThreadPoolExecutor(workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._log.open() as log:
            log.seek(self._offset)
            while not self._stop.is_set():
                line = log.readline()
                if not line.endswith("\n"):
                    time.sleep(0.02)
                    log.seek(log.tell() - len(line))
                    continue
                _, slot, command = line.rstrip("\n").split(" ", 2)
                self.execs[slot] += 1
                found = _KILL.search(command)
                if found:
                    self._pool.submit(self._answer, slot, found.group(1))

    def prefetch(self) -> None:
        """Lists the namespace's fake pods now, rather than at the first exec."""
        self._pod("")

    def _pod(self, slot: str) -> dict[str, Any] | None:
        if slot not in self._pods:
            for namespace in self.namespaces:
                listed = self._api.list_namespaced_pod(
                    namespace, label_selector=SLOT, _preload_content=False
                )
                for pod in _json(listed)["items"]:
                    self._pods[pod["metadata"]["labels"][SLOT]] = pod
        return self._pods.get(slot)

    def _answer(self, slot: str, signal_name: str) -> None:
        try:
            pod = self._pod(slot)
            if pod is None:
                return  # an exec into a fake pod in another namespace
            sidecar = kwok.slot_container(int(slot))
            code = sidecar_exit(signal_name)
            primary = int(pod["metadata"]["annotations"].get(EXIT_CODE, "0"))
            now = stamp(time.time())
            started = pod["metadata"]["creationTimestamp"]
            # A kubelet keeps a run's container ID when it ends: Tandem matches its stop to it.
            ids = {
                c["name"]: c["containerID"]
                for c in pod["status"].get("containerStatuses") or ()
                if c.get("containerID")
            }

            def ended(name: str, code: int, at: str) -> dict[str, Any]:
                terminated = {
                    **({"containerID": ids[name]} if name in ids else {}),
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": at,
                }
                return {
                    "name": name,
                    **({"containerID": ids[name]} if name in ids else {}),
                    "image": "fake",
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }

            # containerStatuses is replaced as a whole by a patch, so both entries are sent;
            # the primary's as kwok's stage wrote it, from the pod's annotations.
            ends_at = pod["metadata"]["annotations"][ENDS_AT]
            patch = {
                "status": {
                    "phase": "Succeeded" if code == 0 and primary == 0 else "Failed",
                    "containerStatuses": [
                        ended("main", primary, ends_at),
                        ended(sidecar, code, now),
                    ],
                }
            }
            self._api.patch_namespaced_pod_status(
                pod["metadata"]["name"], pod["metadata"]["namespace"], patch
            )
            self.answered[pod["metadata"]["name"]] = time.time()
        except Exception as error:  # recorded; the caller reports it
            self.errors.append(f"slot {slot}: {error}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._api.api_client.close()


def _json(response: Any) -> Any:
    return json.loads(response.data)


def peak_rss_and_cpu(pid: int) -> tuple[float, float, float]:
    """(current RSS MiB, peak RSS MiB, CPU seconds) of process PID, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    peak = int(fields["VmHWM"].split()[0]) / 1024
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks
    return rss, peak, cpu
