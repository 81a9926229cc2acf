"""Hostile input on the real cluster: the API refuses an injection, a `nan` grace period is
refused with a Warning while other pods are stopped on time, and a sidecar that answers an exec
with 100 MB leaves the operator's memory where it was."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from localcluster import Layout

from ..kube import Kube, exit_code
from ..kwok_workload import peak_rss_and_cpu
from ..manifests import EXITS_0_ON_TERM, container, job, pod_spec, primary, sidecar_policy
from ..operator_process import Operator, dedicated_operator

LABEL = {"e2e.tandem.dev/operator": "hostile"}
INJECTION = "/$(echo${IFS}INJECTED>&2)"


def test_an_injection_in_an_http_path_is_refused_by_the_api(ns: Kube) -> None:
    policy = sidecar_policy(
        "inject", sidecars=[{"name": "proxy", "onSuccess": {"httpGet": {"port": 80, "path": "/"}}}]
    )
    for path in (INJECTION, "/`id`", "/a;b", "/a|b", "/'a'", '/"a"', "/#a"):
        policy["spec"]["sidecars"][0]["onSuccess"]["httpGet"]["path"] = path
        refused = ns.create(policy, check=False)
        assert refused.returncode != 0, path
        assert "spec.sidecars[0].onSuccess.httpGet.path" in refused.stderr, refused.stderr
    policy["spec"]["sidecars"][0]["onSuccess"]["httpGet"]["path"] = "/quit?now=1"
    assert ns.create(policy, check=False).returncode == 0


def test_a_nan_grace_period_is_refused_with_a_warning_and_other_pods_stop_on_time(
    operator: object, ns: Kube
) -> None:
    spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
    bad = {"tandem.dev/primary": "main", "tandem.dev/grace-period-seconds": "nan"}
    ns.apply(job("bad", spec, annotations=bad))
    ns.apply(job("good", spec, annotations={"tandem.dev/primary": "main"}))
    started = time.monotonic()
    assert ns.wait_job("good") == "Complete"
    took = time.monotonic() - started
    [bad_pod] = ns.wait_job_pods("bad")
    events = ns.wait_for_reasons("Pod", bad_pod["metadata"]["name"], "InvalidAnnotation")
    [warning] = [e for e in events if e["reason"] == "InvalidAnnotation"]
    assert warning["type"] == "Warning" and "grace-period-seconds" in warning["message"]
    assert "nan" in warning["message"]
    # Left alone: no phase written, the proxy still runs.
    bad_pod = ns.get("pod", bad_pod["metadata"]["name"])
    assert bad_pod["status"]["phase"] == "Running" and exit_code(bad_pod, "proxy") is None
    print(f"\nthe good Job completed {took:.1f} s after both were applied")


@pytest.fixture(scope="module")
def exec_operator(
    local_cluster: Layout, operator_rbac: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    log = tmp_path_factory.mktemp("hostile") / "operator.log"
    with dedicated_operator(local_cluster, log, "hostile", "--allow-exec-actions") as running:
        yield running


def test_100_mb_of_exec_output_leaves_the_operators_memory_alone(
    exec_operator: Operator, ns: Kube
) -> None:
    flood = ["sh", "-c", "head -c 100000000 /dev/zero; kill 1"]
    ns.apply(
        sidecar_policy(
            "flood",
            finish="ExitCodes",
            sidecars=[{"name": "proxy", "onSuccess": {"exec": {"command": flood}}}],
        )
    )
    rss_before, peak_before, _ = peak_rss_and_cpu(exec_operator.process.pid)
    spec = pod_spec([primary(), container("proxy", EXITS_0_ON_TERM)])
    ns.apply(job("j", spec, labels={**LABEL, "app": "flood"}))
    [pod] = ns.wait_job_pods("j")
    events = ns.wait_for_reasons("Pod", pod["metadata"]["name"], "SidecarStopFailed", timeout=90)
    [failed] = [e for e in events if e["reason"] == "SidecarStopFailed"]
    assert "more than" in failed["message"], failed["message"]
    assert flood[2] not in failed["message"], "the command's argv reached an Event"
    rss, peak, _ = peak_rss_and_cpu(exec_operator.process.pid)
    print(f"\noperator RSS {rss_before:.0f} -> {rss:.0f} MiB, peak {peak_before:.0f} -> {peak:.0f}")
    assert exec_operator.process.poll() is None
    assert peak - peak_before < 32, "the output was buffered"
    assert peak < 256
