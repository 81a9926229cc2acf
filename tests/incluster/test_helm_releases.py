"""Two `helm install`s of deploy/helm/tandem on disjoint namespaces, as docs/operating.md (*When one
operator is not enough*) tells a user to split a cluster: each release runs its two replicas under
its own ServiceAccount with only the chart's RBAC, they meet in the release's own
ClusterKopfPeering, and each finishes its own namespace's Job and touches nothing in the other's
(the audit log names who wrote each pod's phase)."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from localcluster import Layout

from ..deploy.chart import CHART, helm, helm_bin, set_args
from ..deployment import import_image
from ..kube import Kube, exit_code, wait_for
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary
from .checks import LABEL, audited, can_i

pytestmark = pytest.mark.serial("installs Tandem's chart in the cluster")

SELECTOR = "--pod-selector=e2e.tandem.dev/operator=incluster"


@dataclass(frozen=True)
class Release:
    name: str
    own: Kube
    """Where the release's replicas run (the chart creates it)."""
    watched: Kube

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.own.namespace}:tandem"

    @property
    def peering(self) -> str:
        return f"tandem-{self.own.namespace}"


@pytest.fixture(scope="module")
def releases(kube: Kube, local_cluster: Layout, crd: None) -> Iterator[list[Release]]:
    helm_bin()
    import_image(local_cluster)
    kubeconfig = f"--kubeconfig={local_cluster.admin_kubeconfig}"
    suffix = secrets.token_hex(3)
    made: list[Release] = []
    try:
        for letter in "ab":
            release = Release(
                f"tandem-{letter}-{suffix}",
                kube.in_namespace(f"t-rel-{letter}-{suffix}"),
                kube.in_namespace(f"t-relw-{letter}-{suffix}"),
            )
            made.append(release)
            kube.run("create", "namespace", release.watched.namespace, namespaced=False)
            values = {
                "namespace": {"name": release.own.namespace, "create": True},
                "watchNamespaces": [release.watched.namespace],
                "extraArgs": [SELECTOR],
                "localCluster": True,  # the image deploy/local imported
            }
            helm("install", release.name, str(CHART), kubeconfig, *set_args(values))
        for release in made:
            release.own.run("rollout", "status", "deployment/tandem", "--timeout=180s")
        yield made
    finally:
        # Side by side: each waits about 20 s for its namespace's contents to go.
        with ThreadPoolExecutor() as pool:
            for release in made:
                pool.submit(
                    helm, "uninstall", release.name, kubeconfig, "--wait", "--timeout=90s",
                    check=False,
                )  # fmt: skip
        for release in made:
            for namespace in (release.own, release.watched):
                kube.run(
                    "delete", "namespace", namespace.namespace, "--wait=false",
                    namespaced=False, check=False,
                )  # fmt: skip


def _peers(kube: Kube, peering: str) -> set[str]:
    return set(kube.get("clusterkopfpeering", peering).get("status") or {})


def test_each_release_may_write_only_its_own_namespace_and_peering(
    kube: Kube, releases: list[Release]
) -> None:
    for release, other in (releases, releases[::-1]):
        mine, theirs = release.watched.namespace, other.watched.namespace
        assert can_i(kube, "patch", "pods/status", f"--namespace={mine}", who=release.user)
        assert not can_i(kube, "patch", "pods/status", f"--namespace={theirs}", who=release.user)
        assert not can_i(kube, "watch", "pods", "--all-namespaces", who=release.user)
        peerings = "clusterkopfpeerings.kopf.dev"
        assert can_i(kube, "patch", peerings, who=release.user, name=release.peering)
        assert not can_i(kube, "patch", peerings, who=release.user, name=other.peering)


def test_each_release_meets_only_its_own_replicas_in_its_own_peering(
    kube: Kube, releases: list[Release]
) -> None:
    for release in releases:
        pods = release.own.pods("app.kubernetes.io/name=tandem")
        replicas = {p["metadata"]["name"] for p in pods}
        assert len(replicas) == 2, replicas
        wait_for(
            f"both replicas of {release.name} in {release.peering}",
            lambda r=release, names=replicas: _peers(kube, r.peering) == names,
            timeout=60,
        )


def test_each_release_finishes_its_own_job_and_nothing_in_the_other(
    local_cluster: Layout, releases: list[Release]
) -> None:
    spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
    for release in releases:
        release.watched.apply(
            job("j", spec, annotations={"tandem.dev/primary": "main"}, labels=LABEL)
        )
    for release in releases:
        assert release.watched.wait_job("j") == "Complete", release.name
        [pod] = release.watched.wait_job_pods("j")
        # Finished by phase: the Job counts it at once, and the kubelet stops the proxy after.
        name = pod["metadata"]["name"]
        pod = release.watched.wait_pod(
            name, "proxy ended", lambda p: exit_code(p, "proxy") is not None, 60
        )
        assert pod["status"]["phase"] == "Succeeded"
        assert (exit_code(pod, "main"), exit_code(pod, "proxy")) == (0, 0)
        events = release.watched.wait_for_reasons("Pod", name, "PodFinished")
        assert any(e.get("reportingComponent") == "tandem" for e in events), events
    for release in releases:

        def writers_in(namespace: str) -> set[str]:
            return {
                e["user"]["username"]
                for e in audited(local_cluster, namespace, "status")
                if e["verb"] == "patch"
                and e["user"]["username"].startswith("system:serviceaccount:")
            }

        # The API server writes its audit log asynchronously: wait for the release's write.
        writers = wait_for(
            f"phase writes in {release.watched.namespace}",
            functools.partial(writers_in, release.watched.namespace),
            timeout=20,
        )
        # Only this release's ServiceAccount wrote a phase here; the other has no Role to. (None
        # at all: a cluster started before its audit policy logged every ServiceAccount's.)
        assert writers == {release.user}, (release.name, writers)
