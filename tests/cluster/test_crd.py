"""The SidecarPolicy CRD rejects bad policies at the real API server, with messages that name the
field, so a person can fix them without reading Tandem's code."""

from __future__ import annotations

from typing import Any

import pytest

from ..kube import Kube

VALID: dict[str, Any] = {
    "selector": {"matchLabels": {"app": "x"}},
    "primaryContainers": ["main"],
    "sidecars": [
        {
            "name": "proxy",
            "onSuccess": {"httpPost": {"port": 9091, "path": "/quitquitquit"}},
            "onFailure": {"signal": "TERM"},
        }
    ],
}


def _policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "SidecarPolicy",
        "metadata": {"name": "p"},
        "spec": spec,
    }


INVALID = {
    "no primaries": ({"selector": {}}, "spec.primaryContainers: Required value"),
    "empty primaries": (
        {"selector": {}, "primaryContainers": []},
        "spec.primaryContainers: Invalid value",
    ),
    "two actions at once": (
        {
            **VALID,
            "sidecars": [
                {"name": "proxy", "onSuccess": {"signal": "TERM", "exec": {"command": ["x"]}}}
            ],
        },
        'spec.sidecars[0].onSuccess: Invalid value: "object": give exactly one of signal, '
        "exec, httpGet, httpPost",
    ),
    "an empty action": (
        {**VALID, "sidecars": [{"name": "proxy", "onFailure": {}}]},
        'spec.sidecars[0].onFailure: Invalid value: "object": give exactly one of',
    ),
    "unknown signal": (
        {**VALID, "sidecars": [{"name": "proxy", "onSuccess": {"signal": "STOP"}}]},
        'spec.sidecars[0].onSuccess.signal: Unsupported value: "STOP"',
    ),
    "a primary that is also a sidecar": (
        {**VALID, "sidecarContainers": ["main"]},
        "a container cannot be both in primaryContainers and in sidecarContainers",
    ),
    "port out of range": (
        {**VALID, "sidecars": [{"name": "proxy", "onSuccess": {"httpPost": {"port": 70000}}}]},
        "spec.sidecars[0].onSuccess.httpPost.port: Invalid value: 70000",
    ),
    "unknown preset": (
        {**VALID, "sidecars": [{"name": "proxy", "onSuccess": {"preset": "nginx"}}]},
        'spec.sidecars[0].onSuccess.preset: Unsupported value: "nginx"',
    ),
    "unknown path": (
        {**VALID, "sidecars": [{"name": "proxy", "path": "Telepathy"}]},
        'spec.sidecars[0].path: Unsupported value: "Telepathy"',
    ),
    "unknown failure mode": (
        {**VALID, "onPrimaryFailure": "Sometimes"},
        'spec.onPrimaryFailure: Unsupported value: "Sometimes"',
    ),
    "sidecar entry outside sidecarContainers": (
        {**VALID, "sidecarContainers": ["other"]},
        "sidecars[].name must be one of sidecarContainers",
    ),
    "In without values": (
        {**VALID, "selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
        "In and NotIn need values",
    ),
    "zero grace": ({**VALID, "gracePeriodSeconds": 0}, "spec.gracePeriodSeconds: Invalid value: 0"),
    "bad container name": (
        {**VALID, "primaryContainers": ["Main_1"]},
        "spec.primaryContainers[0]: Invalid value",
    ),
    "duplicate sidecar entries": (
        {**VALID, "sidecars": [{"name": "proxy"}, {"name": "proxy"}]},
        'spec.sidecars[1]: Duplicate value: {"name":"proxy"}',
    ),
    "an exec with no program": (
        {**VALID, "sidecars": [{"name": "proxy", "onSuccess": {"exec": {"command": ["", "x"]}}}]},
        "spec.sidecars[0].onSuccess.exec.command: Invalid value",
    ),
    "a selector key no label can have": (
        {**VALID, "selector": {"matchExpressions": [{"key": "x y", "operator": "Exists"}]}},
        "spec.selector.matchExpressions[0].key: Invalid value",
    ),
    "a selector matchLabels key no label can have": (
        {**VALID, "selector": {"matchLabels": {"app name!": "a"}}},
        "each key is a label key",
    ),
    "a selector value no label can have": (
        {**VALID, "selector": {"matchLabels": {"app": "a b"}}},
        "spec.selector.matchLabels.app: Invalid value",
    ),
    "a selector key whose prefix is too long": (
        {
            **VALID,
            "selector": {"matchExpressions": [{"key": "a" * 254 + "/b", "operator": "Exists"}]},
        },
        "spec.selector.matchExpressions[0].key: Invalid value",
    ),
    "a controller's apiVersion that is none": (
        {**VALID, "podsWithoutJob": {"controllers": [{"apiVersion": "not a/ver", "kind": "X"}]}},
        "spec.podsWithoutJob.controllers[0].apiVersion: Invalid value",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_policies_are_rejected_naming_the_field(crd: None, ns: Kube, case: str) -> None:
    spec, message = INVALID[case]
    done = ns.create(_policy(spec), check=False)
    assert done.returncode != 0, f"accepted: {case}"
    assert message in done.stderr, done.stderr


def test_a_valid_policy_is_accepted_with_defaults(crd: None, ns: Kube) -> None:
    """Also the positive control of the label and apiVersion patterns: well-formed ones pass."""
    valid = {
        **VALID,
        "selector": {
            "matchLabels": {"app": "x", "example.com/tier": "Back_end.1", "empty": ""},
            "matchExpressions": [{"key": "a.b-c/d_e.f", "operator": "In", "values": ["y-1"]}],
        },
        "podsWithoutJob": {
            "controllers": [
                {"apiVersion": "tekton.dev/v1beta1", "kind": "TaskRun"},
                {"apiVersion": "v1", "kind": "ConfigMap"},
                {"apiVersion": "example.com/v1-preview", "kind": "Thing"},  # any DNS-1035 version
            ]
        },
    }
    ns.create(_policy(valid))
    spec = ns.get("sidecarpolicy", "p")["spec"]
    assert spec["onPrimaryFailure"] == "RestartTogether"
    assert (spec["gracePeriodSeconds"], spec["maxAttempts"]) == (30, 3)
    assert ns.run("get", "scp", "p").returncode == 0  # the short name
    assert "p" in ns.run("get", "tandem").stdout  # the category
