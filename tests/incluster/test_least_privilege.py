"""The default install and its exec opt-in, deployed as a user gets them and run against the real
kubelet: deploy/base, without pods/exec at all (--no-exec: pods finish by phase only), and
deploy/overlays/exec, with exec limited by a ValidatingAdmissionPolicy to namespaces that opt in
with the label tandem.dev/exec=allowed (issue #25)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcluster import Layout

from ..deployment import deploy, undeploy
from ..kube import Kube, exit_code, wait_for
from ..manifests import EXITS_0_ON_TERM, IGNORES_TERM, container, job, pod_spec, primary
from .checks import LABEL, can_i, execs_by_operator

pytestmark = pytest.mark.serial("deploys Tandem in tandem-system, cluster-wide")

SELECTOR = "--pod-selector=e2e.tandem.dev/operator=incluster"
OPTED_IN = {"tandem.dev/exec": "allowed"}


def _tandems(events: list[dict[str, object]], reason: str) -> list[dict[str, object]]:
    return [e for e in events if e["reason"] == reason and e.get("reportingComponent") == "tandem"]


# Class-scoped: each install is removed before the next one is deployed in tandem-system.
@pytest.fixture(scope="class")
def no_exec(kube: Kube, local_cluster: Layout) -> Iterator[Kube]:
    """deploy/base as it is: the default install, which holds no exec."""
    yield deploy(kube, local_cluster, SELECTOR, source="base")
    undeploy(kube)
    kube.run("delete", "clusterrolebinding", "tandem-base", "--ignore-not-found")


@pytest.fixture(scope="class")
def opt_in(kube: Kube, local_cluster: Layout) -> Iterator[Kube]:
    yield deploy(kube, local_cluster, SELECTOR, source="overlays/exec")
    undeploy(kube)
    kube.run("delete", "clusterrolebinding", "tandem-exec", "--ignore-not-found")
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        kube.run("delete", kind, "tandem-exec-opt-in", "--ignore-not-found")


class TestDefaultInstallHasNoExec:
    def test_it_holds_no_exec_and_no_ephemeral_containers(self, no_exec: Kube) -> None:
        # `kubectl auth can-i create pods --subresource=exec` (not pods/exec, which asks about a
        # pod named exec) in every namespace, as the "done when" says.
        for verb, resource in (("create", "pods/exec"), ("get", "pods/exec")):
            assert not can_i(no_exec, verb, resource, "-A"), (verb, resource)
        assert not can_i(no_exec, "patch", "pods/ephemeralcontainers", "-A")
        assert can_i(no_exec, "patch", "pods/status", "-A")
        assert can_i(no_exec, "watch", "pods", "-A")

    def test_success_completes_and_the_kubelet_kills_a_sidecar_that_ignores_term(
        self, no_exec: Kube, local_cluster: Layout, ns: Kube
    ) -> None:
        spec = pod_spec([primary(), container("proxy", IGNORES_TERM)])
        ns.apply(job("j", spec, annotations={"tandem.dev/primary": "main"}, labels=LABEL))
        assert ns.wait_job("j") == "Complete"
        [pod] = ns.wait_job_pods("j")
        name = pod["metadata"]["name"]
        pod = ns.wait_pod(name, "proxy ended", lambda p: exit_code(p, "proxy") is not None, 60)
        # TERM ignored, so KILL when the grace period (5 s) ended: the pod stays Succeeded.
        assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 137)
        assert pod["status"]["phase"] == "Succeeded"
        [finished] = _tandems(ns.wait_for_reasons("Pod", name, "PodFinished"), "PodFinished")
        assert "proxy: the kubelet stops it" in str(finished["message"])
        assert execs_by_operator(local_cluster, ns.namespace) == 0

    def test_a_failure_under_never_fails_the_job(self, no_exec: Kube, ns: Kube) -> None:
        spec = pod_spec([primary(exit_code=3), container("proxy", EXITS_0_ON_TERM)])
        ns.apply(job("j", spec, annotations={"tandem.dev/primary": "main"}, labels=LABEL))
        assert ns.wait_job("j") == "Failed"
        [pod] = ns.wait_job_pods("j")
        pod = ns.wait_pod(  # done, not just counted: a put-back may last a moment (test_finish)
            pod["metadata"]["name"], "proxy ended", lambda p: exit_code(p, "proxy") is not None, 30
        )
        assert pod["status"]["phase"] == "Failed" and exit_code(pod, "main") == 3

    def test_an_onfailure_failure_replaces_the_pod(self, no_exec: Kube, ns: Kube) -> None:
        spec = pod_spec(
            [primary(exit_code=1), container("proxy", EXITS_0_ON_TERM)],
            restart_policy="OnFailure",
        )
        annotations = {"tandem.dev/primary": "main"}
        # Under OnFailure the Job counts the primary's restarts inside the pod as failures too:
        # a kubelet that restarts it once before the phase lands would, with a limit of 1, fail
        # the Job instead of replacing the pod (the likely cause of one CI failure: no second pod).
        ns.apply(job("j", spec, annotations=annotations, labels=LABEL, backoff_limit=4))
        [first, *_] = ns.wait_job_pods("j")
        name = first["metadata"]["name"]
        events = ns.wait_for_reasons("Pod", name, "PodFinished", timeout=90)
        assert "replaces the pod" in str(_tandems(events, "PodFinished")[0]["message"])
        first = ns.wait_pod(name, "Failed", lambda p: p["status"].get("phase") == "Failed")
        # The Job started another pod for the primaries' next run, with a fresh proxy.
        wait_for("a second pod", lambda: len(ns.job_pods("j")) >= 2, timeout=60)


class TestExecOptedInPerNamespace:
    def _exit_codes_job(self, ns: Kube) -> None:
        spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
        annotations = {"tandem.dev/primary": "main", "tandem.dev/finish": "ExitCodes"}
        ns.apply(job("j", spec, annotations=annotations, labels=LABEL))

    def test_an_opted_in_namespace_gets_the_exec(
        self, opt_in: Kube, local_cluster: Layout, ns: Kube
    ) -> None:
        ns.run(
            "label", "namespace", ns.namespace, "tandem.dev/exec=allowed", "--overwrite",
            namespaced=False,
        )  # fmt: skip
        self._exit_codes_job(ns)
        assert ns.wait_job("j") == "Complete"
        [pod] = ns.wait_job_pods("j")
        assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
        assert execs_by_operator(local_cluster, ns.namespace) >= 1

    def test_elsewhere_the_exec_is_refused_with_the_fix_and_the_phase_still_works(
        self, opt_in: Kube, ns: Kube
    ) -> None:
        # The tests' namespaces opt in (tests/conftest.py): this one opts out again.
        ns.run("label", "namespace", ns.namespace, "tandem.dev/exec-", namespaced=False)
        self._exit_codes_job(ns)
        [pod] = ns.wait_job_pods("j")
        name = pod["metadata"]["name"]
        events = ns.wait_for_reasons("Pod", name, "SidecarStopFailed", timeout=90)
        [failed] = _tandems(events, "SidecarStopFailed")
        assert "tandem.dev/exec=allowed" in str(failed["message"]), failed["message"]
        assert ns.get("job", "j")["status"].get("succeeded") is None
        # Finishing by phase needs no exec: the same Job, by default, completes.
        spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
        ns.apply(job("k", spec, annotations={"tandem.dev/primary": "main"}, labels=LABEL))
        assert ns.wait_job("k") == "Complete"
