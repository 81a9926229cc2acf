"""A pure, frozen view of a pod: what `decide` needs and nothing more.

Parsing is total: a pod dict with missing or odd fields yields a view, never an exception, because
the watch delivers whatever the API server has, including pods still being scheduled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .names import ANNOTATION_PREFIX


@dataclasses.dataclass(frozen=True)
class Termination:
    """One ended run of a container."""

    exit_code: int
    reason: str
    container_id: str
    finished_at: str


@dataclasses.dataclass(frozen=True)
class ContainerView:
    name: str
    state: str
    """`waiting`, `running`, `terminated`, or `unknown` (no status yet)."""
    container_id: str
    restart_count: int
    terminated: Termination | None
    """The current state, when it is terminated."""
    last_terminated: Termination | None
    """The previous run, when the kubelet has restarted or is about to restart the container."""

    def termination_of(self, container_id: str) -> Termination | None:
        """The record of the run with CONTAINER_ID, if it has ended and is still in the status."""
        for record in (self.terminated, self.last_terminated):
            if record is not None and record.container_id == container_id:
                return record
        return None


@dataclasses.dataclass(frozen=True)
class RunAs:
    """A container's user as the pod says it: its securityContext over the pod's, field by field,
    as the kubelet merges them. None: the pod does not say (the image decides)."""

    user: int | None = None
    group: int | None = None
    non_root: bool | None = None


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """What a container runs, to recognise well-known sidecars (`known`) and Tandem's own helper
    (`helper`)."""

    image: str = ""
    argv: tuple[str, ...] = ()
    """Its command and args, as the spec gives them (empty: the image's own)."""
    target: str = ""
    """An ephemeral container's targetContainerName: whose PID namespace it shares."""


@dataclasses.dataclass(frozen=True)
class Owner:
    """The pod's controller, as its ownerReference with `controller: true` names it."""

    kind: str
    api_version: str
    name: str
    uid: str


@dataclasses.dataclass(frozen=True)
class PodView:
    uid: str
    namespace: str
    name: str
    phase: str
    restart_policy: str
    share_process_namespace: bool
    deleting: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    containers: tuple[str, ...]
    """Regular containers, in spec order. Init containers (native sidecars included) are not here:
    Tandem never touches them."""
    init_containers: tuple[str, ...]
    statuses: Mapping[str, ContainerView]
    controller: Owner | None
    """The ownerReference with `controller: true` (the API server allows one at most), whatever
    its kind: whether it is a Job is the gate's to judge (`finish.decide.managed_job_pod`), never
    a label's."""
    ephemeral: Mapping[str, ContainerView] = dataclasses.field(default_factory=dict)
    """Statuses of ephemeral containers, Tandem's helper among them once added."""
    ephemeral_specs: Mapping[str, ContainerSpec] = dataclasses.field(default_factory=dict)
    run_as: Mapping[str, RunAs] = dataclasses.field(default_factory=dict)
    """Regular and ephemeral containers' users (the API keeps all container names distinct)."""
    specs: Mapping[str, ContainerSpec] = dataclasses.field(default_factory=dict)
    node_name: str = ""
    resource_version: str = ""
    conditions: frozenset[str] = frozenset()
    """Types of the pod's conditions whose status is True."""
    grace_period: int | None = None
    """`terminationGracePeriodSeconds`, which the sweep's Delete keeps."""

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def job(self) -> Owner | None:
        """The controlling batch/v1 Job, if a Job controls the pod."""
        owner = self.controller
        return owner if owner and (owner.kind, owner.api_version) == JOB_CONTROLLER else None

    @property
    def job_name(self) -> str | None:
        return self.job.name if self.job else None

    @property
    def job_uid(self) -> str | None:
        return self.job.uid if self.job else None

    def status(self, name: str) -> ContainerView:
        return self.statuses.get(name) or ContainerView(name, "unknown", "", 0, None, None)


JOB_CONTROLLER = ("Job", "batch/v1")
"""The kind and apiVersion of the only controller whose pods Tandem acts on."""

MAX_ANNOTATION_VALUE = 4096
"""Characters kept of a `tandem.dev/` annotation's value. A view is kept for every pod the sweep
may need, and a pod may carry 256 KiB of annotations: a tenant's pods must not fill Tandem's
memory. A longer value is cut, and then fails to parse (InvalidAnnotation, UnknownContainer)."""

MAX_ARGV_WORDS = 64
MAX_ARGV_WORD = 512
"""A container's command and args kept, at most: enough to recognise a well-known sidecar by its
program and flags (`core.known`), never a tenant's whole argv."""


def _termination(raw: Any) -> Termination | None:
    if not isinstance(raw, Mapping):
        return None
    code = raw.get("exitCode")
    return Termination(
        exit_code=code if isinstance(code, int) else -1,
        reason=str(raw.get("reason") or ""),
        container_id=str(raw.get("containerID") or ""),
        finished_at=str(raw.get("finishedAt") or ""),
    )


def _container(raw: Mapping[str, Any]) -> ContainerView:
    state = raw.get("state") or {}
    kind = next((k for k in ("terminated", "running", "waiting") if k in state), "unknown")
    terminated = _termination(state.get("terminated"))
    container_id = str(raw.get("containerID") or (terminated.container_id if terminated else ""))
    if terminated is not None and not terminated.container_id:
        # The kubelet names the run in both places; a status that names it only at the top
        # (some fakes and older runtimes) still describes the same run.
        terminated = dataclasses.replace(terminated, container_id=container_id)
    return ContainerView(
        name=str(raw.get("name", "")),
        state=kind,
        container_id=container_id,
        restart_count=int(raw.get("restartCount") or 0),
        terminated=terminated,
        last_terminated=_termination((raw.get("lastState") or {}).get("terminated")),
    )


def _names(items: Any) -> tuple[str, ...]:
    return tuple(str(c.get("name", "")) for c in items or () if isinstance(c, Mapping))


def _run_as(pod_context: Any, container: Mapping[str, Any]) -> RunAs:
    own = container.get("securityContext")
    own = own if isinstance(own, Mapping) else {}
    pod_context = pod_context if isinstance(pod_context, Mapping) else {}

    def pick(key: str) -> Any:
        return own.get(key, pod_context.get(key))

    def user(key: str) -> int | None:
        # Only a real ID counts: the helper's user is chosen from it, and root must be explicit.
        value = pick(key)
        real = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return value if real else None

    non_root = pick("runAsNonRoot")
    return RunAs(
        user=user("runAsUser"),
        group=user("runAsGroup"),
        non_root=non_root if isinstance(non_root, bool) else None,
    )


def _spec(raw: Mapping[str, Any]) -> ContainerSpec:
    argv = [a for key in ("command", "args") if isinstance(raw.get(key), list) for a in raw[key]]
    return ContainerSpec(
        image=str(raw.get("image") or "")[:MAX_ARGV_WORD],
        argv=tuple(str(a)[:MAX_ARGV_WORD] for a in argv[:MAX_ARGV_WORDS]),
        target=str(raw.get("targetContainerName") or ""),
    )


def _by_name(items: Any) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("name", "")): c for c in items or () if isinstance(c, Mapping)}


def parse_pod(body: Mapping[str, Any]) -> PodView:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    containers = _by_name(spec.get("containers"))
    ephemeral = _by_name(spec.get("ephemeralContainers"))
    labels = dict(meta.get("labels") or {})
    return PodView(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or "Pending"),
        restart_policy=str(spec.get("restartPolicy") or "Always"),
        share_process_namespace=bool(spec.get("shareProcessNamespace")),
        deleting=bool(meta.get("deletionTimestamp")),
        labels=labels,
        annotations=_own_annotations(meta.get("annotations")),
        containers=_names(spec.get("containers")),
        init_containers=_names(spec.get("initContainers")),
        statuses={c.name: c for c in map(_container, status.get("containerStatuses") or ())},
        controller=_controller(meta.get("ownerReferences")),
        ephemeral={
            c.name: c for c in map(_container, status.get("ephemeralContainerStatuses") or ())
        },
        ephemeral_specs={name: _spec(c) for name, c in ephemeral.items()},
        run_as={
            name: _run_as(spec.get("securityContext"), c)
            for name, c in (containers | ephemeral).items()
        },
        specs={name: _spec(c) for name, c in containers.items()},
        node_name=str(spec.get("nodeName") or ""),
        conditions=frozenset(
            str(c.get("type"))
            for c in status.get("conditions") or ()
            if isinstance(c, Mapping) and c.get("status") == "True"
        ),
        resource_version=str(meta.get("resourceVersion") or ""),
        grace_period=_grace(spec.get("terminationGracePeriodSeconds")),
    )


def _own_annotations(raw: Any) -> dict[str, str]:
    """Tandem's own annotations (`tandem.dev/`), each value cut to MAX_ANNOTATION_VALUE: no
    decision reads any other, and the rest may be large."""
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(key): str(value)[:MAX_ANNOTATION_VALUE]
        for key, value in raw.items()
        if str(key).startswith(ANNOTATION_PREFIX)
    }


def _controller(references: Any) -> Owner | None:
    """The ownerReference with `controller: true`. Only it says who owns the pod: a job-name
    label proves nothing (anyone who may create a pod can set it), nor does an owner that is not
    the controller."""
    for ref in references if isinstance(references, list) else ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return Owner(
                kind=str(ref.get("kind") or ""),
                api_version=str(ref.get("apiVersion") or ""),
                name=str(ref.get("name") or ""),
                uid=str(ref.get("uid") or ""),
            )
    return None


def _grace(raw: Any) -> int | None:
    """The API server admits only a non-negative integer; anything else is not passed on."""
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else None
