"""SidecarPolicy specs generated from the CRD's own schema, valid and not, sent to the real API
server: every rejection names the field, every accepted spec either parses or gets Ready=False
with the reason, and the operator never crashes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localcluster import Layout
from tandem.core import PolicyError, parse_spec

from ..kube import Kube, wait_for
from ..operator_process import ROOT, Operator
from ..schema_strategy import from_openapi

EXAMPLES = 300  # per test: two tests, 600 specs per run


CRD = yaml.safe_load((ROOT / "crds" / "sidecarpolicies.tandem.dev.yaml").read_text())
SPEC_SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
# Wrong values for known fields: type errors, out-of-range numbers, unknown enum members.
WRONG = {
    "primaryContainers": [[], "main", [7], ["Not_A_Name"]],
    "onPrimaryFailure": ["Sometimes", 3],
    "gracePeriodSeconds": [0, -1, 3601, "30"],
    "maxAttempts": [0, 21, "x"],
    "selector": ["app=x", {"matchExpressions": [{"key": "a", "operator": "Near"}]}],
    "sweep": [{"action": "Explode"}, {"stuckAfterSeconds": 1}, {"maxActionsPerSweep": 0}],
    "sidecars": [
        [{"name": "s", "onSuccess": {"signal": "STOP"}}],
        [{"name": "s", "onFailure": {"httpGet": {"port": 0}}}],
        [{"name": "s", "onSuccess": {"preset": "nginx"}}],
        [{"name": "s", "path": "Psychic"}],
    ],
}


@pytest.fixture(scope="module")
def api(local_cluster: Layout, crd: None) -> Iterator[client.CustomObjectsApi]:
    configuration = client.Configuration()
    config.load_kube_config(str(local_cluster.admin_kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield client.CustomObjectsApi(api_client)


def _create(
    api: client.CustomObjectsApi, namespace: str, spec: Any, dry_run: bool = True
) -> str | None:
    body = {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "SidecarPolicy",
        "metadata": {"generateName": "fuzz-"},
        "spec": spec,
    }
    try:
        api.create_namespaced_custom_object(
            "tandem.dev",
            "v1alpha1",
            namespace,
            "sidecarpolicies",
            body,
            dry_run="All" if dry_run else None,
        )
    except ApiException as error:
        assert error.status == 422, error.body
        return str(error.body)
    return None


def _check_accepted(spec: dict[str, Any]) -> None:
    try:
        parse_spec("fuzz", spec)
    except PolicyError as error:  # Allowed, if it says which field: the status carries it.
        assert "spec." in str(error)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(spec=from_openapi(SPEC_SCHEMA))
def test_schema_generated_specs(
    api: client.CustomObjectsApi, ns: Kube, spec: dict[str, Any]
) -> None:
    rejection = _create(api, ns.namespace, spec)
    if rejection is None:
        _check_accepted(spec)
    else:
        assert "spec." in rejection, rejection  # CEL and schema errors name the field


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(base=from_openapi(SPEC_SCHEMA), field=st.sampled_from(sorted(WRONG)), data=st.data())
def test_wrong_values_are_rejected_naming_the_field(
    api: client.CustomObjectsApi, ns: Kube, base: dict[str, Any], field: str, data: st.DataObject
) -> None:
    spec = copy.deepcopy(base)
    spec[field] = data.draw(st.sampled_from(WRONG[field]))
    rejection = _create(api, ns.namespace, spec)
    assert rejection is not None, f"accepted a wrong {field}: {spec[field]!r}"
    assert f"spec.{field}" in rejection, rejection


@pytest.mark.host_operator("checks that the operator's process is alive")
@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(specs=st.lists(from_openapi(SPEC_SCHEMA), min_size=120, max_size=120))
def test_accepted_specs_get_a_ready_condition_and_the_operator_lives(
    operator: Operator, api: client.CustomObjectsApi, ns: Kube, specs: list[dict[str, Any]]
) -> None:
    created = 0
    for spec in specs:
        if created < 25 and _create(api, ns.namespace, spec) is None:
            assert _create(api, ns.namespace, spec, dry_run=False) is None
            created += 1
    assert created >= 10, "too few valid specs generated to test anything"

    def all_have_ready() -> bool:
        items = ns.get("sidecarpolicies")["items"]
        return len(items) == created and all(
            any(c["type"] == "Ready" for c in (p.get("status") or {}).get("conditions") or ())
            for p in items
        )

    wait_for("a Ready condition on every policy", all_have_ready, timeout=60)
    assert operator.process.poll() is None, "the operator exited"
