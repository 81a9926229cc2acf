"""Tandem's helper: the ephemeral container for sidecars without a shell. Who it runs as, how
Tandem tells its own helper from another container of the same name, and when one is ready.

A process without capabilities may signal only processes of its own user, and Pod Security
"restricted" forbids the capability (CAP_KILL) that lifts this. So the helper runs as the
sidecar's user, and as a fixed non-root user when the pod does not say which that is.

Ephemeral containers can be added but never changed or removed, and anyone allowed to patch
pods/ephemeralcontainers can add one named `tandem-helper` before Tandem does. Tandem execs only
into a helper that is exactly what it adds: its image, its command, aimed at the sidecar it
means. Into any other it would run its command in someone else's image, against a container it
did not choose.
"""

from __future__ import annotations

import dataclasses

from ...model.actions import AddHelper
from ...model.names import Reason
from ...model.once import Told, once_key
from ...model.states import ContainerState
from ...model.view import PodView, RunAs
from .. import hints
from ..decision import Part
from ..routes import HELPER_NAME

HELPER_COMMAND = ("sleep", "3600")
"""What the helper runs: it only waits for Tandem's execs, and ends on its own within the hour."""

WAIT = "waiting"
"""`ready_helper`: the helper is being added or starting; its watch event brings the pod back."""

DEFAULT_USER = 65532
"""The helper's user and group when the pod names none for the sidecar: numeric (the image needs
no /etc/passwd entry), not root, and the user distroless images call `nonroot`."""


def helper_user(sidecar: RunAs) -> RunAs:
    """The helper's user for a sidecar that runs as SIDECAR (its container's runAsUser and
    runAsGroup over the pod's, as the view merges them), else DEFAULT_USER. Never root unless
    the sidecar explicitly runs as root: then the helper may match it, since it can only do what
    the sidecar's own user can (signal the sidecar's processes), with no capabilities and no
    privilege escalation. The group decides no signal; it only keeps the helper out of group 0."""
    user = DEFAULT_USER if sidecar.user is None else sidecar.user
    group = DEFAULT_USER if sidecar.group is None else sidecar.group
    return RunAs(user=user, group=group, non_root=user != 0)


def foreign_helper(view: PodView, image: str, target: str) -> str:
    """Why the pod's `tandem-helper` is not the one Tandem adds from IMAGE for TARGET, or "" when
    it is (or the pod has none yet)."""
    spec = view.ephemeral_specs.get(HELPER_NAME)
    if spec is None:
        return ""
    if spec.image != image:
        return f"its image is {spec.image or '(none)'}, not Tandem's {image}"
    if spec.target != target:
        return f"it targets {spec.target or 'no container'}, not {target}"
    if spec.argv != HELPER_COMMAND:
        return f"its command is not Tandem's ({' '.join(HELPER_COMMAND)})"
    return ""


def _refuse(part: Part, name: str, foreign: str) -> tuple[Part, str]:
    """Says once why Tandem will not exec into the pod's `tandem-helper` for NAME, with the fix;
    returns the cause too, for the ladder, which goes on without the helper."""
    refused = part.tell_once(
        once_key(Told.FOREIGN_HELPER, name),
        hints.warning(
            Reason.SIDECAR_STOP_FAILED,
            f"the pod's ephemeral container {HELPER_NAME} was not added by Tandem for {name} "
            f"({foreign}), so Tandem does not exec into it and has no helper for {name}",
            hints.FOREIGN_HELPER_FIX,
        ),
    )
    return refused, f"the pod's {HELPER_NAME} is not Tandem's ({foreign})"


def ready_helper(
    part: Part, view: PodView, image: str, name: str, pid_bound: bool
) -> tuple[Part, str]:
    """Readies Tandem's helper (from IMAGE) for a stop of NAME: "" when it runs and may be
    exec'd into; WAIT while it is being added or starts; else why it cannot serve NAME.
    PID_BOUND: the stop is a signal to the PID 1 of the helper's target."""
    target = part.memory.helper_target or name
    if foreign := foreign_helper(view, image, target):
        return _refuse(part, name, foreign)
    if part.memory.helper_target is None:
        part = part.remember(dataclasses.replace(part.memory, helper_target=name))
        # One already there passed the check: Tandem's own, added before Tandem restarted.
        if HELPER_NAME not in view.ephemeral_specs:
            return part.add(AddHelper(name, helper_user(view.run_as.get(name) or RunAs()))), WAIT
    if pid_bound and target != name:
        return part, f"Tandem's helper is in {target}'s PID namespace, not {name}'s"
    helper = view.ephemeral.get(HELPER_NAME)
    running = helper is not None and helper.state == ContainerState.RUNNING
    return part, "" if running else WAIT
