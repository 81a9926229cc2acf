"""Fixtures shared by the tiers that need the real local cluster (cluster, adapters, e2e).

The cluster is session-scoped: started once if it is not already up, reused across tests, and
stopped at the end only if this session started it.

TANDEM_E2E_OPERATOR chooses where the e2e tier's `operator` runs: `host` (the default, a process
on this machine as the tandem-operator user) or `incluster` (deploy/overlays/local as a user gets
it, under its ServiceAccount: deploy/base with exec opted into per namespace, and the helper).
In-cluster, tests marked `host_operator` are skipped, and so is the in-cluster tier, which
deploys Tandem itself.

With pytest-xdist (`-n 3`, as tests/run.sh runs the tests that may share the cluster), the
workers share one cluster, which must be up before, and one operator, which the controller starts
when the first worker starts and stops at the end (`pytest_configure_node`): one operator for
every namespace, as in production. Tests marked `serial` must not run beside others; run.sh runs
them in a pass of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcluster import Layout, cluster

from . import deployment
from .kube import Kube
from .operator_process import (
    ROOT,
    Attached,
    Operator,
    grant_operator_rbac,
    start_operator,
    stop_operator,
)

CLUSTER_TIERS = ("cluster", "adapters", "e2e", "chaos", "incluster")
E2E_OPERATOR = os.environ.get("TANDEM_E2E_OPERATOR", "host")


def pytest_configure(config: pytest.Config) -> None:
    if E2E_OPERATOR not in ("host", "incluster"):
        raise pytest.UsageError(f"TANDEM_E2E_OPERATOR={E2E_OPERATOR}: host or incluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if tier in CLUSTER_TIERS:
            item.add_marker(pytest.mark.cluster)
        if E2E_OPERATOR != "incluster":
            continue
        if marker := item.get_closest_marker("host_operator"):
            why = marker.args[0] if marker.args else "needs Tandem as a host process"
            item.add_marker(pytest.mark.skip(reason=f"TANDEM_E2E_OPERATOR=incluster: {why}"))
        elif tier == "incluster":
            reason = (
                "TANDEM_E2E_OPERATOR=incluster: the session's operator already is "
                "deploy/overlays/local"
            )
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout()


@pytest.fixture(scope="session")
def local_cluster(layout: Layout, request: pytest.FixtureRequest) -> Iterator[Layout]:
    started_here = not cluster.is_up(layout)
    if started_here and _worker(request.config):
        pytest.fail(_START_FIRST)
    if started_here:
        cluster.build(layout)
        cluster.up(layout)
    yield layout
    if started_here and not os.environ.get("TANDEM_KEEP_CLUSTER"):
        cluster.down(layout, keep_logs=True)  # tests/run.sh prints their tails on failure


@pytest.fixture(scope="session")
def kube(local_cluster: Layout, request: pytest.FixtureRequest) -> Iterator[Kube]:
    kube = Kube(local_cluster.kubectl, local_cluster.admin_kubeconfig)
    if _worker(request.config):
        yield kube  # The controller paused the demo's Tandem.
        return
    with deployment.demo_paused(kube, local_cluster):
        yield kube


def fresh_namespace(kube: Kube) -> Kube:
    """A new namespace, ready for pods; the caller deletes it. Opted into Tandem's exec
    (tandem.dev/exec=allowed), which an in-cluster Tandem from deploy/overlays/local needs for
    graceful stops and the exit-code path; the host operator is not subject to that policy."""
    name = f"t-{secrets.token_hex(4)}"
    kube.run("create", "namespace", name, namespaced=False)
    kube.run("label", "namespace", name, "tandem.dev/exec=allowed", namespaced=False)
    # Pods need the namespace's default service account before they can be created.
    deadline = time.monotonic() + 30
    while kube.in_namespace(name).run("get", "sa", "default", check=False).returncode != 0:
        assert time.monotonic() < deadline, "no default service account"
        time.sleep(0.2)
    return kube.in_namespace(name)


@pytest.fixture
def ns(kube: Kube) -> Iterator[Kube]:
    """A fresh namespace per test, so tests cannot see each other's pods or Events."""
    fresh = fresh_namespace(kube)
    yield fresh
    kube.run("delete", "namespace", fresh.namespace, "--wait=false", namespaced=False, check=False)


@pytest.fixture
def other_ns(kube: Kube) -> Iterator[Kube]:
    """A second fresh namespace, for tests that need two."""
    fresh = fresh_namespace(kube)
    yield fresh
    kube.run("delete", "namespace", fresh.namespace, "--wait=false", namespaced=False, check=False)


@pytest.fixture(scope="session")
def crd(kube: Kube, request: pytest.FixtureRequest) -> None:
    if not _worker(request.config):  # The controller installed them.
        deployment.install_crds(kube)


@pytest.fixture(scope="session")
def operator_rbac(kube: Kube, crd: None, request: pytest.FixtureRequest) -> None:
    if not _worker(request.config):
        grant_operator_rbac(kube)


@dataclass
class DeployedOperator:
    """Tandem deployed from deploy/overlays/local: two replicas in tandem-system (one acts)."""

    system: Kube


@contextlib.contextmanager
def session_operator(
    layout: Layout, kube: Kube, logs: Path
) -> Iterator[Operator | DeployedOperator]:
    """The operator of the e2e tier (TANDEM_E2E_OPERATOR), for the block; its log in LOGS."""
    deployment.remove_leftover(kube)  # The demo's, if any, is paused.
    if E2E_OPERATOR == "incluster":
        log = logs / "replicas.log"
        try:
            yield DeployedOperator(deployment.deploy(kube, layout))
        finally:
            deployment.save_logs(kube, log)
            deployment.undeploy(kube)
            print(f"\noperator replicas' logs: {log}")
        return
    deployed = deployment.deployed_args(kube)
    if deployed is not None and deployment.TEST_MARK not in deployed:
        pytest.fail(
            "Tandem is deployed in tandem-system, and two operators would both act on every "
            "pod. Remove it first: kubectl delete -k deploy/base"
        )
    deployment.install_crds(kube)
    grant_operator_rbac(kube)
    log = logs / "operator.log"
    # Pods labelled for a private operator (see test_scenarios) are not this one's.
    running = start_operator(layout, log, "--pod-selector=!e2e.tandem.dev/operator")
    try:
        yield running
    finally:
        stop_operator(running)
        print(f"\noperator log: {log}")


@pytest.fixture(scope="session")
def operator(
    local_cluster: Layout,
    kube: Kube,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator | DeployedOperator]:
    if (worker := _worker(request.config)) is not None:
        yield _attach(kube, worker.get(_SHARED))
        return
    with session_operator(local_cluster, kube, tmp_path_factory.mktemp("operator")) as running:
        yield running


_SHARED = "tandem_operator"
"""The key of the shared operator, in each xdist worker's `workerinput`."""
_START_FIRST = "pytest-xdist workers share one cluster: start it first (tests/run.sh does)"


def _worker(config: pytest.Config) -> dict[str, Any] | None:
    """An xdist worker's input from the controller; None outside a worker."""
    return getattr(config, "workerinput", None)


def _attach(kube: Kube, shared: str | None) -> Operator | DeployedOperator:
    if shared is None:
        pytest.fail(_START_FIRST)
    found = json.loads(shared)
    if found["kind"] == "incluster":
        return DeployedOperator(kube.in_namespace(deployment.SYSTEM))
    return Operator(Attached(found["pid"]), Path(found["log"]), found["metrics"], found["liveness"])


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist's controller, before each worker starts: the first time, pauses the demo's Tandem
    and starts the session's operator (until `pytest_unconfigure`), if the cluster is up; then
    hands the operator to the worker."""
    config = node.config
    if not hasattr(config, "_tandem_shared"):
        config._tandem_shared = _start_shared() if _selects_cluster_tiers(config) else None
    if config._tandem_shared is not None:
        node.workerinput[_SHARED] = config._tandem_shared[1]


def _selects_cluster_tiers(config: pytest.Config) -> bool:
    """Whether the run's paths may hold a cluster tier's test: `pytest -n 2 tests/unit` while a
    cluster is up must not start an operator that acts on it."""
    tests = ROOT / "tests"
    for arg in config.args or [str(tests)]:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if not path.is_relative_to(tests) or path == tests:
            return True
        if path.relative_to(tests).parts[0] in CLUSTER_TIERS:
            return True
    return False


def _start_shared() -> tuple[contextlib.ExitStack, str] | None:
    layout = Layout()
    if not cluster.is_up(layout):
        return None  # Each worker fails its cluster tests with the cause.
    kube = Kube(layout.kubectl, layout.admin_kubeconfig)
    # A failed start unwinds what was done (the demo deployed again), as the fixtures would.
    with contextlib.ExitStack() as stack:
        stack.enter_context(deployment.demo_paused(kube, layout))
        logs = Path(tempfile.mkdtemp(prefix="tandem-operator-"))
        running = stack.enter_context(session_operator(layout, kube, logs))
        if isinstance(running, DeployedOperator):
            return stack.pop_all(), json.dumps({"kind": "incluster"})
        found = {"pid": running.process.pid, "log": str(running.log)}
        ports = {"metrics": running.metrics_port, "liveness": running.liveness_port}
        return stack.pop_all(), json.dumps({"kind": "host", **found, **ports})


def pytest_unconfigure(config: pytest.Config) -> None:
    if (shared := getattr(config, "_tandem_shared", None)) is not None:
        shared[0].close()
