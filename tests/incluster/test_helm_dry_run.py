"""The Helm chart's renders, sent to the real API server as a server-side dry run: every
object passes the server's schema, defaulting and admission (Pod Security "restricted" included),
with the CRDs installed from crds/. Nothing is persisted."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster import Layout

from ..deploy.chart import CHART, helm, helm_bin, parse, render_text, set_args
from ..kube import Kube
from ..operator_process import ROOT


@pytest.fixture(scope="module")
def namespaces(kube: Kube) -> Iterator[list[str]]:
    """Real namespaces for a dry run to write into: Tandem's own and two watched ones. Tandem's
    enforces Pod Security "restricted" for real, so the server checks the pod template."""
    helm_bin()
    names = [f"t-helm-{secrets.token_hex(3)}-{i}" for i in range(3)]
    for name in names:
        kube.run("create", "namespace", name, "--save-config", namespaced=False)
    kube.run(
        "label",
        "namespace",
        names[0],
        "pod-security.kubernetes.io/enforce=restricted",
        namespaced=False,
    )
    yield names
    for name in names:
        kube.run("delete", "namespace", name, "--wait=false", namespaced=False, check=False)


@pytest.fixture(scope="module")
def crds(kube: Kube, crd: None) -> None:
    """crds/ applied for real (as `helm install` does before the templates), the peering's too."""
    kube.run("apply", "-f", str(ROOT / "crds" / "kopf-peering.yaml"), namespaced=False)
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        kube.run(
            "wait",
            "--for=condition=Established",
            f"crd/{name}",
            "--timeout=60s",
            namespaced=False,
        )


def _variants(namespaces: list[str]) -> dict[str, dict[str, Any]]:
    own, *watched = namespaces
    here = {"namespace": {"name": own, "create": True}, "localCluster": True}
    return {
        "defaults": here,
        "namespaced-delete-service": {
            **here,
            "watchNamespaces": watched,
            "sweeper": {"action": "Delete"},
            "metrics": {"service": {"enabled": True}},
            "helperImage": "",
        },
        "standalone-report-no-metrics": {
            **here,
            "replicas": 1,
            "sweeper": {"action": "Report"},
            "metrics": {"enabled": False},
        },
        # Exec opted into per namespace: the server compiles the admission policy's CEL.
        "exec-helper": {
            **here,
            "exec": {"enabled": True},
            "helperImage": "local.invalid/tandem/busybox:local",
        },
    }


@pytest.mark.parametrize(
    "variant",
    ["defaults", "namespaced-delete-service", "standalone-report-no-metrics", "exec-helper"],
)
def test_the_server_accepts_every_rendered_object(
    kube: Kube, crds: None, namespaces: list[str], variant: str
) -> None:
    values = _variants(namespaces)[variant]
    rendered = render_text(values, crds=True)
    done = kube.run(
        "apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=rendered, namespaced=False
    )
    warnings = [w for w in done.stderr.splitlines() if w.startswith("Warning:")]
    assert not [w for w in warnings if "PodSecurity" in w or "deprecated" in w], warnings
    answer = json.loads(done.stdout)
    accepted = answer["items"] if answer["kind"] == "List" else [answer]
    expected = parse(rendered)

    def names(objs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return sorted(
            (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs
        )

    assert names(accepted) == names(expected)
    [deployment] = [o for o in accepted if o["kind"] == "Deployment"]
    assert deployment["metadata"]["namespace"] == namespaces[0]


def test_helm_install_dry_run_against_the_cluster(
    local_cluster: Layout, crds: None, namespaces: list[str]
) -> None:
    """Helm's own install path: kubeVersion against the real server, and its check that no
    object it would create exists outside a release. Namespaced, because the cluster-wide objects
    may be there from deploy/base (tests/incluster/test_deployed.py): helm refuses to adopt them,
    so a cluster that has the kustomize install needs it removed before `helm install`."""
    release = f"tandem-{secrets.token_hex(3)}"
    kubeconfig = f"--kubeconfig={local_cluster.admin_kubeconfig}"
    own, *watched = namespaces
    values = {
        "namespace": {"name": own, "create": False},
        "watchNamespaces": watched,
        "localCluster": True,
    }
    done = helm(
        "install",
        release,
        str(CHART),
        kubeconfig,
        f"--namespace={own}",
        "--dry-run=server",
        *set_args(values),
    )
    assert "STATUS: pending-install" in done.stdout, done.stdout
    listed = helm("list", "--all-namespaces", "--short", kubeconfig).stdout.split()
    assert release not in listed, "a dry run must store no release"
