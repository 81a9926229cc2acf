"""Pure helpers at the edges: the exec error channel, and SidecarPolicy status patches."""

from __future__ import annotations

import json

from tandem.adapters import handshake_error, parse_error_channel
from tandem.runtime.policies import counters_patch, status_patch

from .crd import spec_schema


def test_error_channel_success_and_exit_codes() -> None:
    assert parse_error_channel('{"metadata":{},"status":"Success"}') == (0, "")
    failure = {
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "message": "exit 143",
        "details": {"causes": [{"reason": "ExitCode", "message": "143"}]},
    }
    assert parse_error_channel(json.dumps(failure)) == (143, "")


def test_error_channel_without_exit_code_is_an_error() -> None:
    internal = {
        "status": "Failure",
        "reason": "InternalError",
        "code": 500,
        "message": 'exec: "/bin/sh": stat /bin/sh: no such file or directory',
        "details": {"causes": [{"message": "error executing command"}]},
    }
    code, error = parse_error_channel(json.dumps(internal))
    assert code is None and "no such file" in error
    assert parse_error_channel("")[0] is None
    assert parse_error_channel("not json")[1].startswith("unreadable")


def test_a_refused_handshake_keeps_its_status_line_and_the_servers_message() -> None:
    # What the websocket client says when the apiserver refuses an exec (here: a webhook's 429).
    status = {
        "kind": "Status",
        "status": "Failure",
        "message": 'admission webhook "w" denied the request: slow down',
        "code": 429,
    }
    headers = {"audit-id": "0b1c", "content-type": "application/json", "content-length": "99"}
    reason = f"Handshake status 429 Too Many Requests -+-+- {headers} -+-+- {json.dumps(status)}"
    assert handshake_error(reason) == (
        'Handshake status 429 Too Many Requests: admission webhook "w" denied the request: '
        "slow down"
    )
    no_body = f"Handshake status 502 Bad Gateway -+-+- {headers} -+-+- None"
    assert handshake_error(no_body) == "Handshake status 502 Bad Gateway"
    plain = f"Handshake status 503 Service Unavailable -+-+- {headers} -+-+- try later"
    assert handshake_error(plain) == "Handshake status 503 Service Unavailable: try later"
    assert handshake_error("Connection refused") == "Connection refused"


def test_status_patch_writes_only_on_change() -> None:
    spec = {"selector": {}, "primaryContainers": ["main"]}
    patch = status_patch("p", spec, {"generation": 2}, {})
    assert patch is not None
    [ready] = patch["conditions"]
    assert (ready["status"], ready["reason"], patch["observedGeneration"]) == ("True", "Valid", 2)
    assert status_patch("p", spec, {"generation": 2}, patch) is None


def test_status_patch_reports_an_unusable_spec() -> None:
    spec = {"primaryContainers": ["m"], "maxAttempts": 0}
    patch = status_patch("p", spec, {"generation": 1}, {})
    assert patch is not None
    [ready] = patch["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.maxAttempts" in ready["message"]


def test_a_policy_stored_valid_turns_not_ready_when_this_operator_refuses_its_selector() -> None:
    # Stored before the CRD refused such labels (docs/deploying.md's upgrade note): the operator
    # lists every policy when it starts, and the policy handler gets each (kopf's event type None).
    spec = {"selector": {"matchLabels": {"app name!": "x"}}, "primaryContainers": ["main"]}
    valid = {"type": "Ready", "status": "True", "reason": "Valid", "observedGeneration": 3}
    stored = {"observedGeneration": 3, "conditions": [valid]}
    patch = status_patch("p", spec, {"generation": 3}, stored)
    assert patch is not None
    [ready] = patch["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "app name!" in ready["message"], ready["message"]
    # The same policy with a label a pod can carry stays as stored: no write.
    fixed = {**spec, "selector": {"matchLabels": {"app": "x"}}}
    current = status_patch("p", fixed, {"generation": 3}, {})
    assert current is not None
    assert status_patch("p", fixed, {"generation": 3}, current) is None


def test_ready_is_what_the_parser_says_the_crd_checks_the_rest() -> None:
    # Several sidecars entries for one name never reach the operator: the CRD declares the list
    # a map keyed by name, and the API server rejects the duplicate (tests/cluster/test_crd.py).
    sidecars = spec_schema()["properties"]["sidecars"]
    assert (sidecars["x-kubernetes-list-type"], sidecars["x-kubernetes-list-map-keys"]) == (
        "map",
        ["name"],
    )
    twice = {"primaryContainers": ["m"], "sidecars": [{"name": "s"}, {"name": "s"}]}
    patch = status_patch("p", twice, {"generation": 1}, {})
    assert patch is not None
    [ready] = patch["conditions"]
    assert ready["status"] == "True"  # no second, diverging check of the schema's rules


def test_counters_add_to_what_the_status_has() -> None:
    assert counters_patch({}, {"pods": {"handled": 3}}) is None
    patch = counters_patch({"handled": 1, "failed": 1}, {"pods": {"handled": 3, "failed": 1}})
    assert patch == {"pods": {"handled": 4, "succeeded": 0, "failed": 2, "mismatched": 0}}
