"""A stop whose call gets no answer in time may have run. Tandem does not repeat it at once: the
sidecar gets its grace period, then, if it still runs, the same stop once more (a stronger one
could end it with the wrong exit code); a second call without an answer is given up, with the
cause. On the real kubelet: an exec action that hangs past the operator's `--exec-timeout`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster import Layout

from ..kube import Kube, container_state, exit_code, wait_for
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary, sidecar_policy
from ..operator_process import Operator, dedicated_operator

LABEL = {"e2e.tandem.dev/operator": "unanswered"}
GRACE = 3
TIMEOUT = 5  # short enough to time out the hang; long for a loaded handshake or `kill`
# The first call hangs past TIMEOUT; any later one sends TERM to PID 1, which exits 0 on it.
HANGS_ONCE = ["sh", "-c", "if mkdir /tmp/called 2>/dev/null; then sleep 300; fi; kill -s TERM 1"]
HANGS = ["sh", "-c", "sleep 300"]


@pytest.fixture(scope="module")
def hang_operator(
    local_cluster: Layout, operator_rbac: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    log = tmp_path_factory.mktemp("unanswered") / "operator.log"
    extra = ("--allow-exec-actions", f"--exec-timeout={TIMEOUT}")
    with dedicated_operator(local_cluster, log, "unanswered", *extra) as running:
        yield running


def _job_with_stop(ns: Kube, app: str, command: list[str]) -> str:
    """A Job whose sidecar's success stop is COMMAND (exec), finished by exit codes; its pod."""
    ns.apply(
        sidecar_policy(
            app,
            finish="ExitCodes",
            gracePeriodSeconds=GRACE,
            sidecars=[{"name": "proxy", "onSuccess": {"exec": {"command": command}}}],
        )
    )
    ns.apply(
        job(
            app,
            pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)]),
            labels={**LABEL, "app": app},
        )
    )
    [pod] = wait_for(f"{app}'s pod", lambda: ns.job_pods(app))
    return str(pod["metadata"]["name"])


def _events(ns: Kube, pod: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in ns.events("Pod", pod) if e["reason"] == reason]


def _execs(operator: Operator, ns: Kube, pod: str) -> list[str]:
    return [
        line
        for line in operator.log_text().splitlines()
        if f"{ns.namespace}/{pod}[" in line and "exec into" in line
    ]


def test_an_unanswered_stop_is_sent_once_more_after_the_grace_period_and_the_job_completes(
    hang_operator: Operator, ns: Kube
) -> None:
    name = _job_with_stop(ns, "hangs-once", HANGS_ONCE)
    assert ns.wait_job("hangs-once") == "Complete"
    pod = ns.get("pod", name)
    assert exit_code(pod, "proxy") == 0, container_state(pod, "proxy")
    [unconfirmed] = _events(ns, name, "SidecarStopFailed")
    assert unconfirmed["type"] == "Warning"
    assert unconfirmed["message"].startswith("could not confirm exec sh"), unconfirmed["message"]
    assert f"did not finish in {TIMEOUT}s" in unconfirmed["message"]
    assert HANGS_ONCE[2] not in unconfirmed["message"], "the command reached an Event"
    [sent] = _events(ns, name, "SidecarStopSent")  # the second call, the same step
    assert "step 1)" in sent["message"], sent["message"]
    execs = _execs(hang_operator, ns, name)
    assert len(execs) == 2, execs
    assert f"did not finish in {TIMEOUT}s" in execs[0], execs
    assert "did not finish" not in execs[1], execs  # answered: 0, or 137 with its container


def test_a_stop_unanswered_twice_is_given_up_with_its_cause(
    hang_operator: Operator, ns: Kube
) -> None:
    name = _job_with_stop(ns, "hangs", HANGS)

    def given_up() -> list[dict[str, Any]] | None:
        failed = _events(ns, name, "SidecarStopFailed")
        return failed if any("sent again" in e["message"] for e in failed) else None

    failed = wait_for("the second SidecarStopFailed", given_up, timeout=60)
    unconfirmed = [e for e in failed if e["message"].startswith("could not confirm exec sh")]
    again = [e for e in failed if "(sent again after its grace period)" in e["message"]]
    assert len(unconfirmed) == len(again) == 1 and len(failed) == 2, failed
    assert f"did not finish in {TIMEOUT}s" in again[0]["message"]
    # Two calls, then none: three more grace periods pass without another.
    assert len(_execs(hang_operator, ns, name)) == 2
    time.sleep(3 * GRACE + 1)
    assert len(_execs(hang_operator, ns, name)) == 2
    assert len(_events(ns, name, "SidecarStopFailed")) == 2
    assert _events(ns, name, "SidecarStopSent") == []
    assert "running" in container_state(ns.get("pod", name), "proxy")["state"]
