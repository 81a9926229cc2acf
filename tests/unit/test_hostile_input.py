"""Bad input from a pod or a policy author is refused with a clear error, never a crash or a
stalled clock: numbers are finite and bounded, paths are URL paths, and any spec or annotation,
however odd, gives a decision."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.core import (
    CoreSettings,
    Decision,
    Monotonic,
    PodMemory,
    PolicyError,
    PolicySource,
    Reason,
    Report,
    Stop,
    handle,
    parse_pod,
    parse_spec,
    resolve,
)
from tandem.core.model.view import MAX_ANNOTATION_VALUE, MAX_ARGV_WORD, MAX_ARGV_WORDS

from .pods import pod, running, status, terminated

EXAMPLES = 10_000 if os.environ.get("CI") == "true" else 300
BAD_SECONDS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "1e-300",
    "0",
    "-5",
    " 5 ",
    "5\n",  # `$` matches before a trailing newline
    "\u0665",  # ARABIC-INDIC DIGIT FIVE
    "5s",
    "",
    "3601",
]


def _ended(annotations: dict[str, str]) -> dict[str, Any]:
    return pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("c2"))],
        annotations=annotations,
    )


@pytest.mark.parametrize("value", BAD_SECONDS)
def test_a_grace_period_that_is_not_a_bounded_number_is_refused(value: str) -> None:
    body = _ended({"tandem.dev/primary": "main", "tandem.dev/grace-period-seconds": value})
    view = parse_pod(body)
    with pytest.raises(PolicyError, match="from 1 to 3600"):
        resolve(view.labels, view.annotations, ())
    decision = handle(view, (), PodMemory(), Monotonic(0.0))
    [report] = decision.actions
    assert isinstance(report, Report) and report.reason is Reason.INVALID_ANNOTATION


@pytest.mark.parametrize(
    ("value", "why"),
    [("", "names no container"), (" , ", "names no container"), ("main", "names no container")],
)
def test_a_sidecars_annotation_that_would_leave_every_sidecar_running_is_refused(
    value: str, why: str
) -> None:
    """As the CRD refuses sidecarContainers that are empty or overlap the primaries: accepted,
    the pod's real sidecar would run on with no stop and no Event."""
    view = parse_pod(_ended({"tandem.dev/primary": "main", "tandem.dev/sidecars": value}))
    [report] = handle(view, (), PodMemory(), Monotonic(0.0)).actions
    assert isinstance(report, Report) and report.reason is Reason.INVALID_ANNOTATION
    assert "tandem.dev/sidecars" in report.message and why in report.message
    # The positive controls: naming the sidecar is accepted, and it is stopped; so it is when a
    # primary is named with it (that name is no sidecar), as before.
    for sidecars in ("proxy", "main,proxy"):
        named = parse_pod(_ended({"tandem.dev/primary": "main", "tandem.dev/sidecars": sidecars}))
        decision = handle(named, (), PodMemory(), Monotonic(0.0))
        warnings = [
            a for a in decision.actions if isinstance(a, Report) and a.type.value == "Warning"
        ]
        assert not warnings, (sidecars, warnings)
        assert [a.sidecar for a in decision.actions if isinstance(a, Stop)] == ["proxy"], sidecars


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, 0, 3601, [30]])
def test_a_policys_grace_period_is_bounded_too(value: Any) -> None:
    with pytest.raises(PolicyError, match="gracePeriodSeconds"):
        parse_spec("p", {"primaryContainers": ["main"], "gracePeriodSeconds": value})


@pytest.mark.parametrize(
    "path", ["/$(echo${IFS}INJECTED>&2)", "/a;b", "/`id`", "/a b", "/'x'", "/a|b", "/#", "/ok\n"]
)
def test_an_http_path_with_shell_characters_is_refused(path: str) -> None:
    spec = {
        "primaryContainers": ["main"],
        "sidecars": [{"name": "proxy", "onSuccess": {"httpPost": {"port": 9091, "path": path}}}],
    }
    with pytest.raises(PolicyError, match="path"):
        parse_spec("p", spec)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["nan", "inf", "1e400", "Phase", "KILL", "main", "$(id)", "\u202e\x1b[2J"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "primaryContainers",
    "sidecarContainers",
    "sidecars",
    "defaultAction",
    "onPrimaryFailure",
    "gracePeriodSeconds",
    "maxAttempts",
    "finish",
    "selector",
    "sweep",
]
ANNOTATIONS = [
    "tandem.dev/primary",
    "tandem.dev/sidecars",
    "tandem.dev/on-primary-failure",
    "tandem.dev/grace-period-seconds",
    "tandem.dev/finish",
]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
    | st.builds(lambda v: {"primaryContainers": v}, values),
    annotations=st.dictionaries(
        st.sampled_from(ANNOTATIONS),
        st.text(max_size=40) | st.sampled_from(["main", "main,proxy", ",".join(["x"] * 10_000)]),
        max_size=5,
    ),
    keeps_phase=st.booleans(),
)
def test_any_spec_and_annotations_give_a_decision(
    spec: dict[str, Any], annotations: dict[str, str], keeps_phase: bool
) -> None:
    spec = {**spec, "selector": {}}
    body = _ended(annotations)
    decision = handle(
        parse_pod(body),
        (PolicySource("p", spec),),
        PodMemory(),
        Monotonic(0.0),
        CoreSettings(kubelet_keeps_phase=keeps_phase),
    )
    assert isinstance(decision, Decision)
    for action in decision.actions:
        after = getattr(action, "after", None)
        assert after is None or 0 <= after <= 3600 + 60, action


def _exec_policy_decision(allowed: bool) -> Decision:
    spec = {
        "selector": {},
        "primaryContainers": ["main"],
        "finish": "ExitCodes",
        "sidecars": [{"name": "proxy", "onSuccess": {"exec": {"command": ["/bin/stop", "x"]}}}],
    }
    return handle(
        parse_pod(_ended({})),
        (PolicySource("p", spec),),
        PodMemory(),
        Monotonic(0.0),
        CoreSettings(exec_actions=allowed),
    )


def test_a_policys_command_runs_only_when_the_cluster_admin_allows_it() -> None:
    refused = _exec_policy_decision(allowed=False)
    assert not [a for a in refused.actions if isinstance(a, Stop)]
    [warning] = [a for a in refused.actions if isinstance(a, Report)]
    assert warning.reason is Reason.SIDECAR_UNSTOPPABLE
    assert "--allow-exec-actions" in warning.message and "/bin/stop" not in warning.message
    allowed = _exec_policy_decision(allowed=True)
    [stop] = [a for a in allowed.actions if isinstance(a, Stop)]
    assert stop.argv == ("/bin/stop", "x")


def test_a_view_keeps_only_tandems_annotations_and_a_bounded_argv() -> None:
    """A tenant's pods cannot fill Tandem's memory: 1 MiB of other annotations, a 10 KiB value of
    Tandem's and a 10,000-word command leave a view of a few KiB, and the same decision."""
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", running("c2"))],
        annotations={
            "tandem.dev/primary": "main",
            "tandem.dev/note": "x" * 10_000,
            "example.com/blob": "y" * (1 << 20),
        },
    )
    body["spec"]["containers"][1]["command"] = ["envoy", *(["-" * 1000] * 10_000)]
    view = parse_pod(body)
    assert set(view.annotations) == {"tandem.dev/primary", "tandem.dev/note"}
    assert len(view.annotations["tandem.dev/note"]) == MAX_ANNOTATION_VALUE
    argv = view.specs["proxy"].argv
    assert len(argv) == MAX_ARGV_WORDS and max(map(len, argv)) == MAX_ARGV_WORD
    assert argv[0] == "envoy"  # the program that recognises a well-known sidecar is kept
    # The positive control: the bounded view decides as the whole pod would (its primary ended).
    decision = handle(
        view, (), PodMemory(), Monotonic(100.0), CoreSettings(kubelet_keeps_phase=True)
    )
    assert decision.managed and decision.actions
