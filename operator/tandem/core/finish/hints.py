"""The concrete fixes that Warning Events suggest. Ops read these at 3 a.m.: be specific."""

from __future__ import annotations

from ..model.actions import ExecResult, Outcome, Report, Tally
from ..model.names import EventType, Reason
from ..model.stop import ActionKind, StopAction


def warning(reason: Reason, what: str, fix: str, tally: Tally | None = None) -> Report:
    """A Warning on the pod and its Job: what happened, then the fix."""
    return Report(EventType.WARNING, reason, f"{what}. Fix: {fix}", on_job=True, tally=tally)


UNSTOPPABLE_FIXES = (
    "make its entrypoint handle SIGTERM (a PID 1 without a handler never receives signals sent "
    "from inside its PID namespace), set shareProcessNamespace: true on the pod, configure an HTTP "
    "shutdown action (httpPost) if the program has one, or on Kubernetes 1.29+ move it to a native "
    "sidecar (an init container with restartPolicy: Always)"
)


FOREIGN_HELPER_FIX = (
    "ephemeral containers can be neither changed nor removed: delete the pod (its Job starts a "
    "new one) or let the sweeper's policy end it, and find out who adds a container named "
    "tandem-helper to pods. If --helper-image changed since Tandem added it, only pods from "
    "before the change are affected"
)


def helper_user_fix(sidecar: str) -> str:
    """The fix for a signal the kernel refused from the helper: the sidecar's process belongs
    to another user than the helper's, and the helper has no capability to signal it."""
    return (
        f"set runAsUser (and runAsGroup) in the securityContext of the {sidecar} container (or "
        "the pod's) to the user its image runs as, so that Tandem's helper takes the same user, "
        "or stop it with an HTTP shutdown action (httpPost), which needs no signal"
    )


def mismatch_fix(exit_code: int, action: StopAction, outcome: Outcome) -> str:
    if outcome is Outcome.SUCCESS:
        if exit_code == 143 and action.kind is ActionKind.SIGNAL:
            return (
                "it exited 143, the code of an unhandled SIGTERM, so the pod cannot succeed: "
                "give onSuccess an action it exits 0 on, for example an httpPost to its shutdown "
                "endpoint (cloud-sql-proxy: /quitquitquit with --quitquitquit) or a flag such as "
                "cloud-sql-proxy's --exit-zero-on-sigterm"
            )
        if exit_code == 137:
            return (
                "it was killed (137): give onSuccess an action it exits 0 on, such as a "
                "signal it handles or an HTTP shutdown call"
            )
        return f"give onSuccess an action that makes it exit 0 (it exited {exit_code})"
    return (
        "it exited 0 although the primaries failed, so under restartPolicy OnFailure it will not "
        "restart with them: give onFailure an action it exits non-zero on (for example signal "
        "KILL with shareProcessNamespace: true), or set onPrimaryFailure: Keep"
    )


def call_fix(result: ExecResult, grant: str) -> str:
    """The fix for a call into a pod that failed; GRANT: the RBAC it needs."""
    if result.status == 403 and "ValidatingAdmissionPolicy" in result.error:
        return (
            "an admission policy refused it, as its message says; Tandem's own, "
            "tandem-status-writes, admits only its finish of a pod that runs to completion and "
            "that a Job controls, or of one in a namespace labelled "
            "tandem.dev/pods-without-job=allowed: label the namespace for a pod no Job owns; "
            "else look for a mutating webhook that changes the write on its way, or a changed "
            "policy"
        )
    if result.status == 403:
        return f"grant the operator's ServiceAccount {grant}"
    if result.exit_code is not None:
        return f"the command exited {result.exit_code}; check that it works in that image"
    if result.no_shell:
        return "the container has no /bin/sh or kill; enable Tandem's helper (--helper-image)"
    if result.refused:
        return "the API server refused the call or was out of reach; Tandem retried with backoff"
    return (
        "the call did not complete (it timed out or lost its connection) and may have run: check "
        "the kubelet of the pod's node and the API server's load"
    )


UNCONFIRMED_FIX = (
    "none needed if it passes: the call may have run, so Tandem waits out the sidecar's grace "
    "period and sends the same stop once more only if the sidecar still runs then. If this "
    "recurs, check the kubelet of the pod's node and the API server's load"
)
