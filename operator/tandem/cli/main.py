"""`tandem run`: flags and environment map onto Settings here, and only here."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import re
import sys

from tandem.runtime import Settings, configure_logging, serve

from . import explain as explain_command

_DEFAULTS = Settings()


_NUMBERS: dict[str, tuple[type[int] | type[float], str]] = {
    # Settings field: (type, help). The flag is --field-name, the variable TANDEM_FIELD_NAME.
    "sweep_interval": (
        float,
        "seconds between sweeps for stuck and orphaned pods; 0 turns the sweeper off",
    ),
    "stuck_after": (
        float,
        "seconds after the primaries ended at which a running pod counts as stuck",
    ),
    "sweep_max_actions": (int, "most pods one sweep acts on"),
    "exec_timeout": (float, "seconds one exec into a sidecar may take, connection included"),
    "exec_concurrency": (int, "execs in flight at once, when many Jobs end together"),
    "exec_retries": (
        int,
        "tries per stop when the API server answers 429 or 5xx or cannot be reached "
        "(never after a timeout: the command may have run)",
    ),
    "exec_backoff": (float, "seconds before the first retry of an exec; doubled after each"),
    "liveness_port": (int, "port of Kopf's liveness endpoint, /healthz"),
    "metrics_port": (int, "port of the Prometheus endpoint, /metrics"),
    "policy_status_interval": (
        float,
        "seconds between writes of SidecarPolicy status counters",
    ),
}


_POSITIVE: dict[str, tuple[int, str]] = {
    # Settings field: (the least value, why 0 cannot work). 0 would pass startup, then fail
    # every stop and every phase write.
    "exec_retries": (1, "it counts the tries of each exec and phase write, the first included"),
    "exec_concurrency": (1, "execs into pods run on that many threads"),
    "exec_timeout": (0, "every exec would count as timed out before its answer is read"),
}


def _env(name: str, default: str) -> str:
    return os.environ.get(f"TANDEM_{name}", default)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tandem",
        description=("Finishes Job pods whose sidecars outlive their primary containers."),
    )
    sub = root.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch this namespace (repeatable; default: the whole cluster; "
        "env TANDEM_NAMESPACES, comma-separated)",
    )
    run.add_argument(
        "--pod-selector",
        default=_env("POD_SELECTOR", ""),
        help="extra label selector for Job pods, applied by the API server",
    )
    run.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig file (default: $KUBECONFIG, else the service account)",
    )
    run.add_argument(
        "--peering",
        default=_env("PEERING", ""),
        help="name of the ClusterKopfPeering (also when watching namespaces) where replicas "
        "meet, so that exactly one acts (empty: standalone)",
    )
    run.add_argument(
        "--priority",
        type=int,
        default=None,
        help="this replica's peering priority (default: random, so that replicas never tie)",
    )
    run.add_argument(
        "--helper-image",
        default=_env("HELPER_IMAGE", ""),
        help="image of the ephemeral helper for sidecars without a shell (with sh, kill and "
        "wget); empty turns the helper path off",
    )
    run.add_argument(
        "--sweep-action",
        choices=["Terminate", "Delete", "Report"],
        default=_env("SWEEP_ACTION", _DEFAULTS.sweep_action),
        help="what the sweep does to annotation-only pods (policies set their own)",
    )
    run.add_argument(
        "--sweep-allow-delete",
        action="store_true",
        default=_env("SWEEP_ALLOW_DELETE", "") == "true",
        help="let the sweep delete pods (needs delete on pods in RBAC)",
    )
    run.add_argument(
        "--allow-exec-actions",
        action="store_true",
        default=_env("ALLOW_EXEC_ACTIONS", "") == "true",
        help="let SidecarPolicies' exec actions run commands in sidecars (off: whoever may write "
        "policies cannot make Tandem run commands)",
    )
    run.add_argument(
        "--no-exec",
        action="store_true",
        default=_env("NO_EXEC", "") == "true",
        help="never exec into pods, so RBAC needs no pods/exec: pods finish by phase only and "
        "the kubelet stops their sidecars (nodes v1.23+)",
    )
    for attribute, (kind, text) in _NUMBERS.items():
        variable = attribute.upper()
        run.add_argument(
            f"--{attribute.replace('_', '-')}",
            type=kind,
            default=kind(_env(variable, str(getattr(_DEFAULTS, attribute)))),
            help=f"{text} (env TANDEM_{variable})",
        )
    run.add_argument(
        "--log-format", choices=["text", "json"], default=_env("LOG_FORMAT", _DEFAULTS.log_format)
    )
    run.add_argument("--log-level", default=_env("LOG_LEVEL", _DEFAULTS.log_level))
    explain = sub.add_parser("explain", help="say why a Job pod is where it is")
    explain.add_argument("pod")
    explain.add_argument("--namespace", "-n", default="default")
    explain.add_argument("--output", "-o", choices=["text", "json"], default="text")
    explain.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    return root


def _namespaces(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(args.namespace or [n for n in _env("NAMESPACES", "").split(",") if n])


def settings_from(args: argparse.Namespace) -> Settings:
    return dataclasses.replace(
        _DEFAULTS,
        namespaces=_namespaces(args),
        pod_selector=args.pod_selector,
        kubeconfig=args.kubeconfig,
        helper_image=args.helper_image,
        peering=args.peering,
        priority=args.priority,
        sweep_action=args.sweep_action,
        sweep_allow_delete=args.sweep_allow_delete,
        allow_exec_actions=args.allow_exec_actions,
        exec_stops=not args.no_exec,
        **{attribute: getattr(args, attribute) for attribute in _NUMBERS},
        log_format=args.log_format,
        log_level=args.log_level,
    )


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_OBJECT_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
"""A DNS-1123 subdomain, as Kubernetes names cluster-scoped objects: the peering's name goes into
the path of Tandem's own requests for it."""


def _check(run: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse leaves unchecked: defaults from the environment skip `choices`, and every
    number must be finite and not negative."""
    if args.sweep_action not in ("Terminate", "Delete", "Report"):
        run.error(
            f"--sweep-action / TANDEM_SWEEP_ACTION: {args.sweep_action!r} is not one of "
            "Terminate, Delete, Report"
        )
    if args.peering and not _OBJECT_NAME.fullmatch(args.peering):
        run.error(
            f"--peering / TANDEM_PEERING: {args.peering!r} is not an object name (lowercase "
            "letters, digits, '-' and '.', at most 253)"
        )
    for namespace in _namespaces(args):
        if len(namespace) > 63 or not re.fullmatch(_LABEL, namespace):
            run.error(
                f"--namespace / TANDEM_NAMESPACES: {namespace!r} is not a namespace name "
                "(lowercase letters, digits and '-', at most 63). Tandem watches namespaces by "
                "exact name: a pattern would be dropped, and the operator would watch nothing there"
            )
    if args.log_format not in ("text", "json"):
        run.error(f"--log-format / TANDEM_LOG_FORMAT: {args.log_format!r} is not text or json")
    if args.no_exec and (args.helper_image or args.allow_exec_actions):
        run.error(
            "--no-exec: the helper (--helper-image) and policies' exec actions "
            "(--allow-exec-actions) both exec into pods; leave them off, or drop --no-exec"
        )
    for attribute in _NUMBERS:
        value = getattr(args, attribute)
        if not math.isfinite(value) or value < 0:
            flag = attribute.replace("_", "-")
            run.error(f"--{flag}: {value!r} is not a finite number of at least 0")
    for attribute, (minimum, why) in _POSITIVE.items():
        value = getattr(args, attribute)
        if value < minimum if minimum else value <= 0:
            flag, variable = attribute.replace("_", "-"), attribute.upper()
            least = "more than 0" if minimum == 0 else f"at least {minimum}"
            run.error(f"--{flag} / TANDEM_{variable}: {value!r} must be {least}: {why}")


def main(argv: list[str] | None = None) -> int:
    root = parser()
    args = root.parse_args(argv)
    if args.command == "run":
        _check(root, args)
    if args.command == "explain":
        return explain_command.run(args.pod, args.namespace, args.output, args.kubeconfig)
    if args.command == "run":
        settings = settings_from(args)
        configure_logging(settings.log_format, settings.log_level)
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
