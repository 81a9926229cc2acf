"""Policies from SidecarPolicy specs and pod annotations, and label selectors."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.core import (
    ActionKind,
    OnPrimaryFailure,
    PolicyError,
    PolicySource,
    StopAction,
    parse_spec,
    resolve,
)
from tandem.core.policy.selector import selector_matches

from .crd import spec_schema


def test_spec_with_per_sidecar_actions() -> None:
    policy = parse_spec(
        "p",
        {
            "primaryContainers": ["main"],
            "onPrimaryFailure": "Keep",
            "gracePeriodSeconds": 5,
            "sidecars": [
                {"name": "sql", "onSuccess": {"httpPost": {"port": 9091, "path": "quitquitquit"}}}
            ],
        },
    )
    assert policy.policy_name == "p" and policy.on_primary_failure is OnPrimaryFailure.KEEP
    actions = policy.explicit("sql")
    assert actions is not None
    assert actions.on_success == StopAction(
        kind=ActionKind.HTTP_POST, port=9091, path="/quitquitquit"
    )
    assert actions.on_failure == StopAction(kind=ActionKind.SIGNAL, signal="TERM")
    assert policy.explicit("other") is None  # no defaultAction given: the defaults apply


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec.primaryContainers"),
        ({"primaryContainers": ["m"], "gracePeriodSeconds": 0}, "spec.gracePeriodSeconds"),
        ({"primaryContainers": ["m"], "maxAttempts": 0}, "spec.maxAttempts"),
        ({"primaryContainers": ["m"], "onPrimaryFailure": "x"}, "spec.onPrimaryFailure"),
        (
            {
                "primaryContainers": ["m"],
                "sidecars": [{"name": "s", "onSuccess": {"signal": "STOP"}}],
            },
            "spec.sidecars[0].onSuccess.signal",
        ),
        (
            {"primaryContainers": ["m"], "sidecars": [{"name": "s", "onFailure": {}}]},
            "spec.sidecars[0].onFailure",
        ),
        (
            {"primaryContainers": ["m"], "defaultAction": {"onSuccess": {"httpGet": {"port": 0}}}},
            "spec.defaultAction.onSuccess.httpGet.port",
        ),
        (
            {
                "primaryContainers": ["m"],
                "defaultAction": {"onSuccess": {"exec": {"command": [""]}}},
            },
            "spec.defaultAction.onSuccess.exec.command",
        ),
        # Selectors no pod's labels can satisfy: Ready False, not a policy that silently idles.
        (
            {"primaryContainers": ["m"], "selector": {"matchLabels": {"app name!": "a"}}},
            "spec.selector.matchLabels",
        ),
        (
            {"primaryContainers": ["m"], "selector": {"matchLabels": {"app": "a b"}}},
            "spec.selector.matchLabels[app]",
        ),
        (
            {"primaryContainers": ["m"], "selector": {"matchLabels": {"a/" * 2 + "b": "c"}}},
            "spec.selector.matchLabels",
        ),
        (
            {
                "primaryContainers": ["m"],
                "selector": {"matchExpressions": [{"key": "x y", "operator": "Exists"}]},
            },
            "spec.selector.matchExpressions[0].key",
        ),
        (
            {
                "primaryContainers": ["m"],
                "selector": {
                    "matchExpressions": [{"key": "k", "operator": "In", "values": ["ok", "-no"]}]
                },
            },
            "spec.selector.matchExpressions[0].values[1]",
        ),
    ],
)
def test_unusable_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_spec("p", spec)


def test_annotations_override_the_policy_field_by_field() -> None:
    source = PolicySource(
        "p",
        {
            "selector": {"matchLabels": {"app": "a"}},
            "primaryContainers": ["main"],
            "gracePeriodSeconds": 9,
        },
    )
    policy = resolve({"app": "a"}, {"tandem.dev/sidecars": "proxy"}, [source]).policy
    assert policy is not None
    assert (policy.primaries, policy.sidecars, policy.grace_seconds) == (("main",), ("proxy",), 9)
    assert policy.policy_name == "p"


def test_no_annotation_and_no_matching_policy_means_unmanaged() -> None:
    source = PolicySource(
        "p", {"selector": {"matchLabels": {"app": "a"}}, "primaryContainers": ["main"]}
    )
    assert resolve({"app": "b"}, {}, [source]).policy is None


def test_first_matching_policy_by_name_wins_and_the_conflict_is_named() -> None:
    sources = [PolicySource(n, {"selector": {}, "primaryContainers": [n]}) for n in ("b", "a")]
    resolution = resolve({}, {}, sources)
    assert resolution.policy is not None and resolution.policy.primaries == ("a",)
    assert resolution.conflict == ("a", "b")


@pytest.mark.parametrize(
    "annotations",
    [
        {"tandem.dev/primary": " , "},
        {"tandem.dev/primary": "main", "tandem.dev/grace-period-seconds": "soon"},
        {"tandem.dev/primary": "main", "tandem.dev/on-primary-failure": "Never"},
    ],
)
def test_bad_annotations_raise_with_the_key(annotations: dict[str, str]) -> None:
    with pytest.raises(PolicyError, match=r"annotation tandem\.dev/"):
        resolve({}, annotations, [])


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "1"}, False),
    ],
)
def test_selectors(
    selector: dict[str, Any] | None,
    labels: dict[str, str],
    matches: bool,
) -> None:
    assert selector_matches(selector, labels) is matches


def test_default_action_has_only_what_the_crd_keeps() -> None:
    # The API server prunes fields the schema does not declare, so escalation and path under
    # defaultAction never reach the operator; the parser must not give them a meaning.
    default_action = spec_schema()["properties"]["defaultAction"]
    assert set(default_action["properties"]) == {"onSuccess", "onFailure"}
    policy = parse_spec(
        "p",
        {
            "primaryContainers": ["main"],
            "defaultAction": {
                "onSuccess": {"signal": "USR1"},
                "escalation": {"onSuccess": [{"signal": "KILL"}], "onFailure": []},
                "path": "SharedPID",
            },
        },
    )
    defaults = policy.default_actions
    assert defaults.on_success == StopAction(kind=ActionKind.SIGNAL, signal="USR1")
    assert defaults.ladder(True) == (defaults.on_success,)  # no KILL on success
    assert defaults.ladder(False)[1:] == (StopAction(kind=ActionKind.SIGNAL, signal="KILL"),)
    plain = {"primaryContainers": ["m"], "defaultAction": {"onSuccess": {"signal": "USR1"}}}
    assert defaults == parse_spec("p", plain).default_actions


def test_selectors_of_well_formed_labels_are_valid() -> None:
    """The positive control of the selector refusals: every shape the API server admits."""
    selector = {
        "matchLabels": {"app": "web", "example.com/tier": "Back_end.1", "empty": ""},
        "matchExpressions": [
            {"key": "a.b-c/d_e.f", "operator": "In", "values": ["x", "y-1"]},
            {"key": "team", "operator": "Exists"},
        ],
    }
    policy = parse_spec("p", {"primaryContainers": ["m"], "selector": selector})
    assert policy.primaries == ("m",)
