"""Tandem deployed from deploy/ the way a user gets it: its image imported into the node's
containerd, the CRDs established, the rendered overlay applied, both replicas ready and met in the
ClusterKopfPeering. The tests' install is deploy/overlays/local (deploy/base, which finishes by
phase only, plus exec opted into per namespace and the helper): the test namespaces carry
tandem.dev/exec=allowed (tests/conftest.py). Used by the in-cluster tier and by the e2e tier's
`operator` fixture when TANDEM_E2E_OPERATOR=incluster."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from localcluster import Layout

from .kube import Kube, wait_for

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "tandem-system"
SA = f"system:serviceaccount:{SYSTEM}:tandem"
LOCAL = "overlays/local"
"""The tests' install; its ClusterRole `tandem` is also what the host operator is granted."""
TEST_MARK = "e2e.tandem.dev/operator"
"""In the args of a host operator's pod selector; as an annotation, on a Deployment that a
test session made."""


def deployed_args(kube: Kube) -> str | None:
    """The operator container's args of a Deployment `tandem` in tandem-system, None if none."""
    found = kube.in_namespace(SYSTEM).run(
        "get",
        "deployment",
        "tandem",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
        check=False,
    )
    return found.stdout if found.returncode == 0 else None


def deployed_by(kube: Kube) -> str | None:
    """Who made the Deployment `tandem` in tandem-system: `tests`, `other` (the demo, say), or
    None if there is none."""
    key = TEST_MARK.replace(".", "\\.")
    found = kube.in_namespace(SYSTEM).run(
        "get",
        "deployment",
        "tandem",
        "-o",
        f"jsonpath={{.metadata.annotations.{key}}}",
        check=False,
    )
    if found.returncode != 0:
        return None
    return "tests" if found.stdout else "other"


@contextlib.contextmanager
def demo_paused(kube: Kube, layout: Layout) -> Iterator[None]:
    """Pauses a Tandem that is deployed in the cluster but not by a test session (the demo's)
    for the length of the block, and deploys it again from deploy/base afterwards.

    Two operators would both act on every pod, and the in-cluster tests deploy and remove their
    own Tandem in tandem-system. So the demo's Deployment is deleted (its namespace, RBAC and
    peering stay) and, at the end, deploy/base is applied again and waited for, as the demo does.
    A session killed before the end leaves it paused; `bash deploy/local/demo.sh` restores it.
    """
    if not pause_demo(kube):
        yield  # None deployed, or a test session's own
        return
    try:
        yield
    finally:
        resume_demo(kube, layout)


def pause_demo(kube: Kube) -> bool:
    """Deletes the demo's Deployment, if there is one, and waits for its pods to go; True if it
    did (`resume_demo` deploys it again)."""
    if deployed_by(kube) != "other":
        return False
    system = kube.in_namespace(SYSTEM)
    print(f"\n[tests] pausing the Tandem deployed in {SYSTEM} (the demo's)")
    system.run("delete", "deployment", "tandem", "--wait=true", "--timeout=100s")
    system.run(
        "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=tandem", "--timeout=100s"
    )
    return True


def resume_demo(kube: Kube, layout: Layout) -> None:
    print(f"\n[tests] deploying the demo's Tandem in {SYSTEM} again (deploy/base)")
    deploy(kube, layout, by_tests=False, source="base")


def remove_leftover(kube: Kube) -> None:
    """Removes a Deployment that an interrupted test session left, and waits until it is gone."""
    if deployed_by(kube) == "tests":
        undeploy(kube)
    wait_until_gone(kube)


def wait_until_gone(kube: Kube) -> None:
    """Waits for a tandem-system of an earlier run that is still terminating."""

    def not_terminating() -> bool:
        found = kube.run(
            "get",
            "namespace",
            SYSTEM,
            "-o",
            "jsonpath={.status.phase}",
            check=False,
            namespaced=False,
        )
        return found.returncode != 0 or found.stdout != "Terminating"

    wait_for(f"{SYSTEM} of an earlier run to be gone", not_terminating, timeout=180)


def install_crds(kube: Kube) -> None:
    """Every CRD in crds/, established: the SidecarPolicy, and the ClusterKopfPeering that
    deploy/base's peering (and a test running operators as releases) needs."""
    kube.run("apply", "-k", str(ROOT / "crds"), namespaced=False)
    kube.run(
        "wait",
        "--for=condition=Established",
        "crd/clusterkopfpeerings.kopf.dev",
        "crd/sidecarpolicies.tandem.dev",
        "--timeout=60s",
        namespaced=False,
    )


def import_image(layout: Layout) -> None:
    """The operator image of this checkout, built if its sources changed, in the node's
    containerd."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy/local/images/operator_image.py"),
            "--import",
            "--address",
            str(layout.containerd_socket),
        ],
        check=True,
    )


def deploy(
    kube: Kube, layout: Layout, *extra_args: str, by_tests: bool = True, source: str = LOCAL
) -> Kube:
    """Applies deploy/SOURCE (`overlays/local`, or `base`: no exec), with EXTRA_ARGS
    appended to the operator's args (before the first apply, so that one ReplicaSet ever
    exists); returns a client for tandem-system once both replicas are ready and both appear in
    the peering. BY_TESTS marks the Deployment as a test session's, which `demo_paused` never
    mistakes for the demo's."""
    import_image(layout)
    wait_until_gone(kube)
    # deploy/base grants no delete: a binding of the optional sweeper role must not linger.
    kube.run(
        "delete",
        "clusterrolebinding",
        "tandem-sweeper-delete",
        "--ignore-not-found",
        namespaced=False,
    )
    # An older checkout's node reader, on a cluster it deployed to: Tandem reads no nodes now.
    kube.run(
        "delete",
        "clusterrolebinding,clusterrole",
        "tandem-node-reader",
        "--ignore-not-found",
        namespaced=False,
    )
    install_crds(kube)
    objects = list(
        yaml.safe_load_all(
            kube.run("kustomize", str(ROOT / "deploy" / source), namespaced=False).stdout
        )
    )
    if source != LOCAL and by_tests:
        _own_cluster_role(kube, objects, source.rsplit("/", 1)[-1])
    for obj in objects:
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["containers"][0]["args"].extend(extra_args)
            if by_tests:
                obj["metadata"].setdefault("annotations", {})[TEST_MARK] = "session"
    kube.run(
        "apply",
        "-f",
        "-",
        namespaced=False,
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    system = kube.in_namespace(SYSTEM)
    system.run("rollout", "status", "deployment/tandem", "--timeout=180s")

    def replicas_met() -> bool:
        names = {p["metadata"]["name"] for p in system.pods("app.kubernetes.io/name=tandem")}
        peers = kube.get("clusterkopfpeering", "tandem").get("status") or {}
        return bool(names) and names <= set(peers)

    # Until both have met, which replica acts may still change hands: a replica starts paused,
    # resumes when it sees no peer of a higher priority, and pauses when one appears.
    wait_for("both replicas in the peering", replicas_met, timeout=60)
    return system


def _own_cluster_role(kube: Kube, objects: list[dict[str, Any]], suffix: str) -> None:
    """Another install's ClusterRole `tandem` under its own name: the session's host operator is
    bound to overlays/local's (exec and the helper). The binding of `tandem` goes (a binding's
    roleRef cannot change), so the ServiceAccount holds only what SOURCE grants; the next deploy
    of overlays/local brings it back."""
    kube.run("delete", "clusterrolebinding", "tandem", "--ignore-not-found", namespaced=False)
    for obj in objects:
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding") and obj["metadata"]["name"] == (
            "tandem"
        ):
            obj["metadata"]["name"] = f"tandem-{suffix}"
            if obj["kind"] == "ClusterRoleBinding":
                obj["roleRef"]["name"] = f"tandem-{suffix}"


def save_logs(kube: Kube, path: Path) -> None:
    """Both replicas' logs (current and previous containers), each line prefixed by its pod."""
    with open(path, "w") as out:
        for previous in ("false", "true"):
            done = kube.in_namespace(SYSTEM).run(
                "logs",
                "-l",
                "app.kubernetes.io/name=tandem",
                "--prefix",
                "--tail=-1",
                f"--previous={previous}",
                check=False,
            )
            out.write(done.stdout)


def undeploy(kube: Kube) -> None:
    """Removes the operator (its namespace); the CRDs, ClusterRoles and peering stay, as other
    tiers of the session use them."""
    kube.run("delete", "namespace", SYSTEM, "--timeout=180s", namespaced=False, check=False)


def active_replica(kube: Kube) -> str:
    """The replica with the highest priority in the ClusterKopfPeering: the one that acts."""
    peers = kube.get("clusterkopfpeering", "tandem").get("status") or {}
    return max(peers, key=lambda identity: peers[identity]["priority"])


def main(argv: list[str]) -> int:
    """`python -m tests.deployment pause|resume`: tests/run.sh pauses the demo's Tandem once for
    all its passes (`pause` prints `paused` if there was one), and deploys it again at the end."""
    layout = Layout()
    kube = Kube(layout.kubectl, layout.admin_kubeconfig)
    if argv == ["pause"]:
        print("paused" if pause_demo(kube) else "none")
    elif argv == ["resume"]:
        resume_demo(kube, layout)
    else:
        print("usage: python -m tests.deployment pause|resume", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
