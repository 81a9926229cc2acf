"""Exec faults from the real apiserver: 429 and 500 answers to the operator's exec.

A validating webhook on `CONNECT pods/exec` (tests/exec_webhook.py), scoped to the test's
namespace, denies the operator's execs with the chosen status code, which the apiserver passes on
as the HTTP status of the exec's handshake. Tandem must retry with exponential backoff, at most
`--exec-retries` times, then post a Warning Event with the cause, and keep running.

A dedicated operator runs here, with a retry budget and backoff small enough to time, and it
handles only the pods labelled for it.
"""

from __future__ import annotations

import itertools
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster import Layout

from ..exec_webhook import DENIAL_MESSAGE, ExecWebhook
from ..kube import Kube, all_running, container_state, exit_code, job_condition, wait_for
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec
from ..operator_process import Operator, dedicated_operator

RETRIES = 5
BACKOFF = 0.5
"""The dedicated operator's budget: gaps of 0.5, 1, 2 and 4 s between its five tries."""
GRACE = 3
LABEL = {"e2e.tandem.dev/operator": "exec-faults"}
OPERATOR_USER = "tandem-operator"

# The primary waits for the test to say go (a file), so that it ends only once the webhook is
# known to be live: the apiserver picks up a new webhook configuration asynchronously.
PRIMARY = container(
    "main", ["sh", "-c", "while [ ! -f /tmp/go ]; do sleep 0.1; done; sleep 0.5; exit 0"]
)


@pytest.fixture(scope="module")
def fault_operator(
    local_cluster: Layout, operator_rbac: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    log = tmp_path_factory.mktemp("exec-faults") / "operator.log"
    extra = (f"--exec-retries={RETRIES}", f"--exec-backoff={BACKOFF}")
    with dedicated_operator(local_cluster, log, "exec-faults", *extra) as running:
        yield running


StartWebhook = Callable[[list[int], int], ExecWebhook]


@pytest.fixture
def exec_webhook(
    kube: Kube, ns: Kube, local_cluster: Layout, tmp_path: Path
) -> Iterator[StartWebhook]:
    """Starts the webhook server in the cluster's netns and registers it for NS only."""
    started: list[ExecWebhook] = []

    def start(codes: list[int], fail_first: int) -> ExecWebhook:
        name = f"tandem-exec-faults-{ns.namespace}-{secrets.token_hex(2)}"
        webhook = ExecWebhook.start(
            tmp_path / "webhook", local_cluster.netns_path, name, codes, fail_first
        )
        started.append(webhook)
        kube.apply(webhook.configuration(ns.namespace))
        return webhook

    yield start
    for webhook in started:
        kube.run(
            "delete", "validatingwebhookconfiguration", webhook.name, namespaced=False, check=False
        )
        webhook.stop()


def _run_job(ns: Kube, webhook: ExecWebhook) -> str:
    """Creates the Job, waits for its pod to run and the webhook to see execs into it, then lets
    the primary finish. Returns the pod's name."""
    ns.apply(
        job(
            "j",
            pod_spec([PRIMARY, container("proxy", EXITS_0_ON_TERM)]),
            annotations={
                "tandem.dev/primary": "main",
                "tandem.dev/grace-period-seconds": str(GRACE),
                "tandem.dev/finish": "ExitCodes",  # the faults are the exec's
            },
            labels=LABEL,
        )
    )
    pod = wait_for("the Job's pod", lambda: ns.job_pods("j"))[0]
    name = str(pod["metadata"]["name"])
    ns.wait_pod(name, "running", all_running)
    # The admin's execs are recorded and allowed: once one is seen, the webhook is live.
    wait_for(
        "the webhook to see an exec",
        lambda: ns.exec(name, "main", "true").returncode == 0 and webhook.requests(name),
        timeout=30,
    )
    assert ns.exec(name, "main", "touch", "/tmp/go").returncode == 0
    return name


def _operator_execs(webhook: ExecWebhook, pod: str) -> list[dict[str, Any]]:
    return webhook.requests(pod, user=OPERATOR_USER)


def _gaps(execs: list[dict[str, Any]]) -> list[float]:
    return [b["time"] - a["time"] for a, b in itertools.pairwise(execs)]


def _print_attempts(title: str, execs: list[dict[str, Any]]) -> None:
    start = execs[0]["time"]
    print(f"\n{title}")
    for i, record in enumerate(execs, 1):
        outcome = f"denied {record['denied_with']}" if record["denied_with"] else "allowed"
        stamp = time.strftime("%H:%M:%S", time.localtime(record["time"]))
        print(
            f"  attempt {i}: {stamp}.{int(record['time'] % 1 * 1000):03d} "
            f"(+{record['time'] - start:.3f} s) {outcome}"
        )
    print("  gaps: " + ", ".join(f"{g:.3f} s" for g in _gaps(execs)))


def _assert_backoff(execs: list[dict[str, Any]]) -> None:
    """Each gap is the backoff for that retry (BACKOFF, doubled each time), plus the time the
    refused exec took, which is milliseconds."""
    gaps = _gaps(execs)
    for i, gap in enumerate(gaps):
        expected = BACKOFF * 2**i
        assert expected - 0.05 <= gap <= expected + 1.0, (i, gaps)
    assert gaps == sorted(gaps) and gaps[-1] > 2 * gaps[0], gaps


def _messages(ns: Kube, pod: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in ns.events("Pod", pod) if e["reason"] == reason]


@pytest.mark.parametrize("code", [429, 500])
def test_transient_refusals_are_retried_with_backoff_until_the_stop_gets_through(
    fault_operator: Operator, ns: Kube, exec_webhook: StartWebhook, code: int
) -> None:
    failures = RETRIES - 2  # below the budget, with a try to spare
    webhook = exec_webhook([code], failures)
    name = _run_job(ns, webhook)

    assert ns.wait_job("j") == "Complete"
    pod = ns.get("pod", name)
    assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
    execs = _operator_execs(webhook, name)
    _print_attempts(f"{code} x {failures}, then allowed (pod {name}):", execs)
    assert [r["denied_with"] for r in execs] == [code] * failures + [0]
    assert all(r["container"] == "proxy" for r in execs)
    _assert_backoff(execs)
    ns.wait_for_reasons("Pod", name, "SidecarStopSent", "SidecarStopped")
    assert len(_messages(ns, name, "SidecarStopSent")) == 1
    assert not _messages(ns, name, "SidecarStopFailed")
    assert fault_operator.process.poll() is None


def test_a_refusal_that_persists_ends_in_a_warning_with_its_cause_and_no_crash(
    fault_operator: Operator, ns: Kube, exec_webhook: StartWebhook
) -> None:
    webhook = exec_webhook([500], -1)
    name = _run_job(ns, webhook)

    events = ns.wait_for_reasons("Pod", name, "SidecarStopFailed", timeout=60)
    [failed] = [e for e in events if e["reason"] == "SidecarStopFailed"]
    execs = _operator_execs(webhook, name)
    _print_attempts(f"500 on every exec (pod {name}):", execs)
    print(f"  Event {failed['type']} {failed['reason']}: {failed['message']}")
    assert failed["type"] == "Warning"
    assert DENIAL_MESSAGE in failed["message"] and "500" in failed["message"]
    assert "retried with backoff" in failed["message"]
    assert len(execs) == RETRIES and all(r["denied_with"] == 500 for r in execs)
    _assert_backoff(execs)
    # The Job hears of it too.
    assert "SidecarStopFailed" in ns.reasons("Job", "j")

    # Several grace periods later: no more execs, the operator lives, the pod is as it was.
    time.sleep(3 * GRACE + 2)
    assert len(_operator_execs(webhook, name)) == RETRIES
    assert fault_operator.process.poll() is None
    url = f"http://127.0.0.1:{fault_operator.liveness_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
    assert "Traceback" not in fault_operator.log_text()
    pod = ns.get("pod", name)
    assert pod["status"]["phase"] == "Running"
    assert exit_code(pod, "main") == 0
    assert "running" in container_state(pod, "proxy")["state"]
    assert container_state(pod, "proxy")["restartCount"] == 0
    assert pod["metadata"].get("deletionTimestamp") is None
    assert job_condition(ns.get("job", "j")) is None
    assert len(_messages(ns, name, "SidecarStopFailed")) == 1
    # Nothing blames the sidecar for a stop it never received.
    assert not _messages(ns, name, "SidecarUnstoppable")
    print("  other Events: " + ", ".join(sorted(e["reason"] for e in ns.events("Pod", name))))
