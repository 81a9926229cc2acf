"""Job specs that are wrong before they run are named when they are created: the API server
evaluates deploy/base/job-hazards.yaml (a ValidatingAdmissionPolicy, Warn and Audit), and kubectl
prints each hazard as a warning. Nothing is refused. The Jobs are created suspended, so no pod
runs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from ..kube import Kube, wait_for

POLICY = Path(__file__).parents[2] / "deploy" / "base" / "job-hazards.yaml"
WARNING = "Warning: Validation failed for ValidatingAdmissionPolicy 'tandem-job-hazards'"
PRIMARY = {"tandem.dev/primary": "main"}


def _template(
    annotations: dict[str, str],
    containers: tuple[str, ...] = ("main", "proxy"),
    native: tuple[str, ...] = (),
    restart: str = "Never",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": restart,
        "containers": [{"name": c, "image": "local.invalid/none"} for c in containers],
    }
    if native:
        spec["initContainers"] = [
            {"name": c, "image": "local.invalid/none", "restartPolicy": "Always"} for c in native
        ]
    return {"metadata": {"annotations": annotations}, "spec": spec}


def _job(name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"suspend": True, "template": template, **spec},
    }


def _cronjob(name: str, template: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 0 1 1 *",
            "suspend": True,
            "jobTemplate": {"spec": {"template": template}},
        },
    }


EXIT_3 = {"operator": "In", "values": [3]}
EXIT_3_FAILS_THE_JOB = {"action": "FailJob", "onExitCodes": EXIT_3}
MAIN_EXIT_3_FAILS_THE_JOB = {
    "action": "FailJob",
    "onExitCodes": {"containerName": "main", **EXIT_3},
}

HAZARDS = {
    "a primary the template lacks": (
        _job("primary", _template({"tandem.dev/primary": "mian, main"})),
        "tandem.dev/primary names mian, which the pod template's containers (main, proxy) do not"
        " include",
    ),
    "a sidecar the template lacks": (
        _job("sidecar", _template({**PRIMARY, "tandem.dev/sidecars": "prxy"})),
        "tandem.dev/sidecars names prxy, which the pod template's containers (main, proxy) do not"
        " include",
    ),
    "a named sidecar that is native": (
        _job(
            "named-native",
            _template({**PRIMARY, "tandem.dev/sidecars": "proxy,agent"}, native=("agent",)),
        ),
        "tandem.dev/sidecars names agent, a native sidecar",
    ),
    "only native sidecars": (
        _job("all-native", _template(PRIMARY, containers=("main",), native=("agent",))),
        "every sidecar of this pod template is native (agent)",
    ),
    "an exit-code rule without a container": (
        _job("exit-codes", _template(PRIMARY), podFailurePolicy={"rules": [EXIT_3_FAILS_THE_JOB]}),
        "a podFailurePolicy rule with onExitCodes and no containerName also matches a sidecar's"
        " exit code",
    ),
    "a backoffLimit the first failure uses up": (
        _job("backoff", _template(PRIMARY, restart="OnFailure"), backoffLimit=2),
        "backoffLimit 2 is used up by the primary's first failure: under OnFailure it restarts"
        " together with its 1 sidecar(s)",
    ),
    "a CronJob's template": (
        _cronjob("nightly", _template({"tandem.dev/primary": "report"})),
        "tandem.dev/primary names report",
    ),
}

GOOD = {
    "a named primary and sidecar": _job(
        "good", _template({**PRIMARY, "tandem.dev/sidecars": "proxy"}, native=("agent",))
    ),
    "an exit-code rule on the primary": _job(
        "good-exit-codes",
        _template(PRIMARY),
        podFailurePolicy={"rules": [MAIN_EXIT_3_FAILS_THE_JOB]},
    ),
    "OnFailure with room to retry": _job(
        "good-backoff", _template(PRIMARY, restart="OnFailure"), backoffLimit=6
    ),
    "OnFailure, Keep": _job(
        "good-keep",
        _template({**PRIMARY, "tandem.dev/on-primary-failure": "Keep"}, restart="OnFailure"),
        backoffLimit=1,
    ),
    # Not Tandem's: a wrong spec, but no tandem.dev/primary, so not checked.
    "a Job that does not opt in": _job(
        "not-ours", _template({}), podFailurePolicy={"rules": [EXIT_3_FAILS_THE_JOB]}
    ),
}


@pytest.fixture(scope="module")
def hazards(kube: Kube) -> None:
    """The policy installed, and in force: a known hazard is warned of (the positive control
    for every 'no warning' below; a policy is enforced a moment after it is created)."""
    kube.run("apply", "-f", str(POLICY), namespaced=False)
    probe = kube.in_namespace("default")

    def warned() -> bool:
        name = f"hazard-probe-{uuid.uuid4().hex[:8]}"
        done = probe.create(_job(name, _template({"tandem.dev/primary": "absent"})))
        probe.run("delete", "job", name, "--wait=false")
        return WARNING in done.stderr

    wait_for("the job-hazards policy in force", warned, timeout=30)


@pytest.mark.parametrize("case", sorted(HAZARDS))
def test_a_hazard_is_named_when_the_job_is_created(hazards: None, ns: Kube, case: str) -> None:
    manifest, message = HAZARDS[case]
    done = ns.create(manifest)  # created all the same: a warning, never a refusal
    assert WARNING in done.stderr and message in done.stderr, done.stderr
    assert done.stderr.count(WARNING) == 1, done.stderr  # this hazard, and no other
    assert ns.get(manifest["kind"].lower(), manifest["metadata"]["name"])


@pytest.mark.parametrize("case", sorted(GOOD))
def test_a_good_spec_is_created_without_a_warning(hazards: None, ns: Kube, case: str) -> None:
    done = ns.create(GOOD[case])
    assert "Warning" not in done.stderr, done.stderr


def test_the_backoff_limit_is_checked_only_where_tandem_may_exec(hazards: None, ns: Kube) -> None:
    """Without exec (the namespace not opted in), a failed pod is replaced, not restarted in
    tandem: the Job counts one failure, and there is no hazard."""
    manifest, message = HAZARDS["a backoffLimit the first failure uses up"]
    ns.run("label", "namespace", ns.namespace, "tandem.dev/exec-", namespaced=False)
    assert "Warning" not in ns.create(manifest).stderr
    ns.run("label", "namespace", ns.namespace, "tandem.dev/exec=allowed", namespaced=False)
    again = {**manifest, "metadata": {"name": "backoff-again"}}
    assert message in ns.create(again).stderr  # the control: opted in again, warned


def test_a_cronjob_is_checked_when_its_template_changes_not_otherwise(
    hazards: None, ns: Kube
) -> None:
    good = _cronjob("nightly", _template(PRIMARY))
    assert "Warning" not in ns.create(good).stderr
    bad = _cronjob("nightly", _template({"tandem.dev/primary": "report"}))
    changed = ns.run("replace", "-f", "-", stdin=json.dumps(bad))
    assert "tandem.dev/primary names report" in changed.stderr, changed.stderr
    # The same wrong template, untouched by a label change: not named again.
    labelled = ns.run("label", "cronjob", "nightly", "team=reports")
    assert "Warning" not in labelled.stderr, labelled.stderr
