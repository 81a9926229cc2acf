"""The policy that applies to one pod: from its annotations and the SidecarPolicy that selects it.

The CRD schema and its CEL rules reject malformed SidecarPolicies at the API server; this module
still parses defensively, because annotations have no schema and old objects may predate a rule.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from ..model import names
from ..model.stop import DEFAULT_STOP, KILL, StopAction
from .selector import selector_matches, selector_problem
from .stop_action import ForcedPath, PolicyError, parse_action

__all__ = [
    "DEFAULT_STOP",
    "KILL",
    "FinishMode",
    "OnPrimaryFailure",
    "Policy",
    "PolicyError",
    "PolicySource",
    "Resolution",
    "SidecarActions",
    "StopAction",
    "WithoutJob",
    "parse_spec",
    "resolve",
]


class OnPrimaryFailure(StrEnum):
    RESTART_TOGETHER = "RestartTogether"
    KEEP = "Keep"


class FinishMode(StrEnum):
    """How Tandem ends a pod whose primaries ended."""

    PHASE = "Phase"
    """Write the primaries' outcome as the pod's phase (after any known graceful stop); the
    kubelet stops what still runs. Needs a kubelet that keeps an API-set terminal phase."""
    EXIT_CODES = "ExitCodes"
    """Stop every sidecar so that its exit code gives the pod the primaries' outcome."""


@dataclasses.dataclass(frozen=True)
class SidecarActions:
    on_success: StopAction = DEFAULT_STOP
    on_failure: StopAction = DEFAULT_STOP
    escalate_success: tuple[StopAction, ...] = ()
    """Tried in order while the sidecar still runs after each grace period. None by default on
    success: KILL gives 137, which fails the pod and makes the Job re-run succeeded work."""
    escalate_failure: tuple[StopAction, ...] = (KILL,)
    path: ForcedPath = ForcedPath.AUTO

    def ladder(self, success: bool) -> tuple[StopAction, ...]:
        if success:
            return (self.on_success, *self.escalate_success)
        return (self.on_failure, *self.escalate_failure)


REPLACING_CONTROLLERS = frozenset(
    {"ReplicaSet", "StatefulSet", "DaemonSet", "Deployment", "ReplicationController"}
)
"""Kinds whose pods are never finished, named or not: each replaces a pod it loses, so a phase
written there ends a pod meant to run on, and its controller makes another."""


@dataclasses.dataclass(frozen=True)
class WithoutJob:
    """spec.podsWithoutJob: the run-to-completion pods no Job owns that the policy opts in, in its
    namespace, when the operator allows it (--pods-without-job)."""

    bare: bool = False
    """Pods with no controller ownerReference (Airflow's KubernetesPodOperator, Spark drivers)."""
    controllers: frozenset[tuple[str, str]] = frozenset()
    """(kind, apiVersion) of controllers whose pods it opts in (a Tekton TaskRun, a custom
    resource)."""


@dataclasses.dataclass(frozen=True)
class Policy:
    source: str
    """Where the policy came from, for Events: `annotation` or `SidecarPolicy NAME`."""
    policy_name: str | None = None
    """The SidecarPolicy whose status counts this pod; None for annotation-only pods."""
    primaries: tuple[str, ...] = ()
    sidecars: tuple[str, ...] | None = None
    """None: every regular container that is not a primary."""
    actions: Mapping[str, SidecarActions] = dataclasses.field(default_factory=dict)
    default_actions: SidecarActions = SidecarActions()
    on_primary_failure: OnPrimaryFailure = OnPrimaryFailure.RESTART_TOGETHER
    grace_seconds: float = 30.0
    max_attempts: int = 3
    finish: FinishMode = FinishMode.PHASE
    default_explicit: bool = False
    """spec.defaultAction names a stop (it is neither absent nor empty): its stops are known
    graceful ones, like a sidecar's own."""
    without_job: WithoutJob | None = None
    """spec.podsWithoutJob, if the policy opts in pods that no Job owns."""
    stop_order: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """sidecars[].stopOrder by container name; the others take the well-known table's (the phase
    road's `order_of`)."""

    def explicit(self, sidecar: str) -> SidecarActions | None:
        """The actions the policy names for SIDECAR itself or through defaultAction, if any."""
        if sidecar in self.actions:
            return self.actions[sidecar]
        return self.default_actions if self.default_explicit else None


@dataclasses.dataclass(frozen=True)
class PolicySource:
    """A SidecarPolicy as the operator's index holds it."""

    name: str
    spec: Mapping[str, Any]


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _steps(raw: Any, where: str, default: tuple[StopAction, ...]) -> tuple[StopAction, ...]:
    if raw is None:
        return default
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: give a list of actions")
    return tuple(parse_action(step, f"{where}[{i}]") for i, step in enumerate(raw))


def _on_outcome(raw: Mapping[str, Any], where: str) -> SidecarActions:
    """onSuccess and onFailure: the part of an actions entry that defaultAction has too."""

    def action(key: str) -> StopAction:
        return parse_action(raw[key], f"{where}.{key}") if key in raw else DEFAULT_STOP

    return SidecarActions(on_success=action("onSuccess"), on_failure=action("onFailure"))


def _default_actions(raw: Any) -> SidecarActions:
    """spec.defaultAction: onSuccess and onFailure only, as the CRD declares (the API server
    prunes anything else), so the default ladder and path always apply."""
    return _on_outcome(raw or {}, "spec.defaultAction")


def _names(value: Any, where: str) -> tuple[str, ...]:
    """Container names: a list of non-empty strings (the CRD's schema, checked again because the
    parser must never raise anything but PolicyError)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: give a list of container names")
    return tuple(value)


def _sidecar_actions(raw: Mapping[str, Any], where: str) -> SidecarActions:
    escalation = raw.get("escalation") or {}
    if not isinstance(escalation, Mapping):
        raise PolicyError(f"{where}.escalation: give onSuccess and onFailure lists")
    try:
        path = ForcedPath(raw.get("path", ForcedPath.AUTO))
    except ValueError:
        choices = ", ".join(ForcedPath)
        raise PolicyError(f"{where}.path: {raw.get('path')!r} is not one of {choices}") from None
    return dataclasses.replace(
        _on_outcome(raw, where),
        escalate_success=_steps(escalation.get("onSuccess"), f"{where}.escalation.onSuccess", ()),
        escalate_failure=_steps(
            escalation.get("onFailure"), f"{where}.escalation.onFailure", (KILL,)
        ),
        path=path,
    )


MAX_GRACE_SECONDS = 3600
"""As the CRD's maximum for gracePeriodSeconds: every number from a pod or policy is bounded."""

_DECIMAL = re.compile(r"[0-9]{1,5}(\.[0-9]{1,3})?")


def _seconds(value: Any, where: str) -> float:
    """Seconds from 1 to MAX_GRACE_SECONDS: an int or float from a policy, or plain ASCII decimal
    text from an annotation. `nan`, `inf`, `1e400`, other scripts' digits and padding are
    refused: a NaN deadline would never fire."""
    if isinstance(value, str):
        number = float(value) if _DECIMAL.fullmatch(value) else math.nan  # `$` passes "5\n"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        number = math.nan
    if not (math.isfinite(number) and 1 <= number <= MAX_GRACE_SECONDS):
        raise PolicyError(
            f"{where}: {value!r} is not a number of seconds from 1 to {MAX_GRACE_SECONDS}"
        )
    return number


def _finish_mode(value: Any, where: str) -> FinishMode:
    try:
        return FinishMode(value)
    except ValueError:
        raise PolicyError(f"{where}: {value!r} is not Phase or ExitCodes") from None


def _failure_mode(value: Any, where: str) -> OnPrimaryFailure:
    try:
        return OnPrimaryFailure(value)
    except ValueError:
        raise PolicyError(f"{where}: {value!r} is not RestartTogether or Keep") from None


def parse_spec(name: str, spec: Mapping[str, Any]) -> Policy:
    """A SidecarPolicy's spec as a Policy; PolicyError names the field that is wrong."""
    primaries = _names(spec.get("primaryContainers"), "spec.primaryContainers")
    if not primaries:
        raise PolicyError("spec.primaryContainers: name at least one container")
    if problem := selector_problem(spec.get("selector")):
        raise PolicyError(problem)
    sidecars = _names(spec.get("sidecarContainers"), "spec.sidecarContainers")
    entries = spec.get("sidecars") or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise PolicyError("spec.sidecars: give a list of entries, each with a name")
    named = [
        (_names([e.get("name")], f"spec.sidecars[{i}].name")[0], e) for i, e in enumerate(entries)
    ]
    # An entry that names no stop of its own (a name, a stopOrder, the default path) leaves the
    # sidecar its well-known clean stop, as an empty defaultAction does.
    actions = {
        name: _sidecar_actions(item, f"spec.sidecars[{i}]")
        for i, (name, item) in enumerate(named)
        if _names_a_stop(item)
    }
    stop_order = {
        name: _order(item["stopOrder"], f"spec.sidecars[{i}].stopOrder")
        for i, (name, item) in enumerate(named)
        if "stopOrder" in item
    }
    if not isinstance(spec.get("defaultAction") or {}, Mapping):
        raise PolicyError("spec.defaultAction: give onSuccess and onFailure")
    grace = _seconds(spec.get("gracePeriodSeconds", 30), "spec.gracePeriodSeconds")
    attempts = spec.get("maxAttempts", 3)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise PolicyError("spec.maxAttempts: give a whole number from 1 to 20")
    return Policy(
        source=f"SidecarPolicy {name}",
        policy_name=name,
        primaries=primaries,
        sidecars=sidecars or None,
        actions=actions,
        default_actions=_default_actions(spec.get("defaultAction")),
        on_primary_failure=_failure_mode(
            spec.get("onPrimaryFailure", "RestartTogether"), "spec.onPrimaryFailure"
        ),
        grace_seconds=float(grace),
        max_attempts=attempts,
        finish=_finish_mode(spec.get("finish", FinishMode.PHASE), "spec.finish"),
        # `defaultAction: {}` names no stop: well-known sidecars keep their own clean stops.
        default_explicit=bool(spec.get("defaultAction")),
        stop_order=stop_order,
        without_job=_without_job(spec.get("podsWithoutJob")),
    )


def _without_job(raw: Any) -> WithoutJob | None:
    where = "spec.podsWithoutJob"
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("bare", False), bool):
        raise PolicyError(f"{where}: give bare (true or false) and controllers")
    controllers = raw.get("controllers") or []
    if not isinstance(controllers, list):
        raise PolicyError(f"{where}.controllers: give a list of apiVersion and kind")
    kinds = set()
    for i, item in enumerate(controllers):
        at = f"{where}.controllers[{i}]"
        if not isinstance(item, Mapping) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("apiVersion", "kind")
        ):
            raise PolicyError(f"{at}: give apiVersion and kind")
        if item["kind"] in REPLACING_CONTROLLERS:
            raise PolicyError(
                f"{at}: a {item['kind']} replaces the pods it loses; its pods are never finished"
            )
        kinds.add((item["kind"], item["apiVersion"]))
    return WithoutJob(bare=raw.get("bare", False), controllers=frozenset(kinds))


def _names_a_stop(entry: Mapping[str, Any]) -> bool:
    return (
        any(k in entry for k in ("onSuccess", "onFailure", "escalation"))
        or entry.get("path", ForcedPath.AUTO) != ForcedPath.AUTO
    )


MAX_STOP_ORDER = 9
"""As the CRD's maximum for stopOrder."""


def _order(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STOP_ORDER:
        raise PolicyError(f"{where}: give a whole number from 0 to {MAX_STOP_ORDER}")
    return value


def _sidecars(named: tuple[str, ...], primaries: tuple[str, ...]) -> tuple[str, ...]:
    """The annotation's sidecars. A primary named among them is no sidecar (`sidecars_of` leaves
    it out); naming nothing else is refused, as the CRD refuses such sidecarContainers: accepted,
    it would leave every real sidecar running, silently."""
    if not [name for name in named if name not in primaries]:
        raise PolicyError(
            f"annotation {names.SIDECARS_ANNOTATION} names no container but the primaries; name "
            "the sidecars to stop, or remove it"
        )
    return named


def _with_annotations(base: Policy | None, annotations: Mapping[str, str]) -> Policy | None:
    """Pod annotations override the policy field by field; the primary annotation alone opts in."""
    primary = annotations.get(names.PRIMARY_ANNOTATION)
    if base is None and primary is None:
        return None
    policy = base or Policy(source="annotation", primaries=())
    changes: dict[str, Any] = {}
    if primary is not None:
        changes["primaries"] = _split(primary)
        if not changes["primaries"]:
            raise PolicyError(f"annotation {names.PRIMARY_ANNOTATION} names no container")
        if base is not None:
            changes["source"] = f"{base.source} with pod annotations"
    if (sidecars := annotations.get(names.SIDECARS_ANNOTATION)) is not None:
        changes["sidecars"] = _sidecars(
            _split(sidecars), changes.get("primaries", policy.primaries)
        )
    if (mode := annotations.get(names.ON_PRIMARY_FAILURE_ANNOTATION)) is not None:
        changes["on_primary_failure"] = _failure_mode(
            mode, f"annotation {names.ON_PRIMARY_FAILURE_ANNOTATION}"
        )
    if (finish := annotations.get(names.FINISH_ANNOTATION)) is not None:
        changes["finish"] = _finish_mode(finish, f"annotation {names.FINISH_ANNOTATION}")
    if (grace := annotations.get(names.GRACE_ANNOTATION)) is not None:
        changes["grace_seconds"] = _seconds(grace, f"annotation {names.GRACE_ANNOTATION}")
    return dataclasses.replace(policy, **changes)


@dataclasses.dataclass(frozen=True)
class Resolution:
    policy: Policy | None
    conflict: tuple[str, ...] = ()
    """Names of every SidecarPolicy that selected the pod, when more than one did."""


def resolve(
    labels: Mapping[str, str], annotations: Mapping[str, str], candidates: Iterable[PolicySource]
) -> Resolution:
    """The policy for a pod. Several matching SidecarPolicies: the first by name wins, reported.

    Raises PolicyError for annotations that cannot be used.
    """
    matching = sorted(
        (c for c in candidates if selector_matches(c.spec.get("selector"), labels)),
        key=lambda c: c.name,
    )
    base: Policy | None = None
    for candidate in matching:
        try:
            base = parse_spec(candidate.name, candidate.spec)
            break
        except PolicyError:
            continue  # Its own status says why; a later policy may still apply.
    conflict = tuple(c.name for c in matching) if len(matching) > 1 else ()
    return Resolution(_with_annotations(base, annotations), conflict)
