"""The exec adapter against the real API server and kubelet: true exit codes, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcluster import Layout
from tandem.adapters import Executor, load_configuration

from ..kube import Kube, all_running
from ..manifests import SHELLLESS, SLEEP_FOREVER, container, pod_spec


@pytest.fixture(scope="module")
def target(kube: Kube) -> Iterator[Kube]:
    ns = kube.in_namespace("adapters")
    kube.run("create", "namespace", "adapters", namespaced=False, check=False)
    spec = pod_spec([container("shell", SLEEP_FOREVER), container("bare", image=SHELLLESS)])
    ns.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "target"}, "spec": spec})
    ns.wait_pod("target", "running", all_running)
    yield ns
    kube.run("delete", "namespace", "adapters", "--wait=false", namespaced=False, check=False)


@pytest.fixture(scope="module")
def executor(local_cluster: Layout) -> Executor:
    return Executor(load_configuration(str(local_cluster.admin_kubeconfig)))


@pytest.mark.parametrize("code", [0, 1, 3, 137, 143])
def test_exit_code_comes_from_the_error_channel(
    target: Kube, executor: Executor, code: int
) -> None:
    result = executor.run(
        "adapters",
        "target",
        "shell",
        ("sh", "-c", f"echo out; echo err >&2; exit {code}"),
        timeout=10,
    )
    assert (result.exit_code, result.error) == (code, "")
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_no_shell_is_an_error_not_an_exit_code(target: Kube, executor: Executor) -> None:
    result = executor.run("adapters", "target", "bare", ("/bin/sh", "-c", "true"), timeout=10)
    assert result.exit_code is None
    assert "no such file or directory" in result.error


def test_a_missing_pod_is_404(target: Kube, executor: Executor) -> None:
    result = executor.run("adapters", "nope", "shell", ("true",), timeout=10)
    assert (result.exit_code, result.status) == (None, 404)


def test_a_command_past_its_deadline_is_cut(target: Kube, executor: Executor) -> None:
    result = executor.run("adapters", "target", "shell", ("sleep", "30"), timeout=2)
    assert result.exit_code is None and "did not finish in 2s" in result.error


def test_no_rbac_for_exec_is_403(target: Kube, local_cluster: Layout) -> None:
    # kube-proxy's identity may read pods but not exec into them.
    denied = Executor(load_configuration(str(local_cluster.state / "kube-proxy.kubeconfig")))
    result = denied.run("adapters", "target", "shell", ("true",), timeout=10)
    assert (result.exit_code, result.status) == (None, 403)
