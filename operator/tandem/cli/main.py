"""`tandem run`: flags and environment map onto Settings here, and only here."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys

from tandem.runtime import Settings, configure_logging, serve

from . import explain as explain_command

_DEFAULTS = Settings()


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
        help="Kopf peering name, so that of several replicas exactly one acts (empty: standalone)",
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
        "--sweep-interval",
        type=float,
        default=float(_env("SWEEP_INTERVAL", str(_DEFAULTS.sweep_interval))),
        help="seconds between sweeps for stuck and orphaned pods; 0 turns the sweeper off",
    )
    run.add_argument(
        "--sweep-action",
        choices=["Terminate", "Delete", "Report"],
        default=_env("SWEEP_ACTION", _DEFAULTS.sweep_action),
        help="what the sweep does to annotation-only pods (policies set their own)",
    )
    run.add_argument(
        "--stuck-after",
        type=float,
        default=float(_env("STUCK_AFTER", str(_DEFAULTS.stuck_after))),
        help="seconds after the primaries ended at which a running pod counts as stuck",
    )
    run.add_argument(
        "--sweep-max-actions",
        type=int,
        default=int(_env("SWEEP_MAX_ACTIONS", str(_DEFAULTS.sweep_max_actions))),
    )
    run.add_argument(
        "--sweep-allow-delete",
        action="store_true",
        default=_env("SWEEP_ALLOW_DELETE", "") == "true",
        help="let the sweep delete pods (needs delete on pods in RBAC)",
    )
    run.add_argument(
        "--exec-timeout",
        type=float,
        default=float(_env("EXEC_TIMEOUT", str(_DEFAULTS.exec_timeout))),
    )
    run.add_argument(
        "--exec-concurrency",
        type=int,
        default=int(_env("EXEC_CONCURRENCY", str(_DEFAULTS.exec_concurrency))),
        help="execs in flight at once, when many Jobs end together",
    )
    run.add_argument(
        "--exec-retries",
        type=int,
        default=int(_env("EXEC_RETRIES", str(_DEFAULTS.exec_retries))),
        help="tries per stop when the API server answers 429 or 5xx or the exec times out",
    )
    run.add_argument(
        "--exec-backoff",
        type=float,
        default=float(_env("EXEC_BACKOFF", str(_DEFAULTS.exec_backoff))),
        help="seconds before the first retry of an exec; doubled for each one after",
    )
    run.add_argument(
        "--liveness-port",
        type=int,
        default=int(_env("LIVENESS_PORT", str(_DEFAULTS.liveness_port))),
    )
    run.add_argument(
        "--metrics-port", type=int, default=int(_env("METRICS_PORT", str(_DEFAULTS.metrics_port)))
    )
    run.add_argument(
        "--policy-status-interval",
        type=float,
        default=float(_env("POLICY_STATUS_INTERVAL", str(_DEFAULTS.policy_status_interval))),
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


def settings_from(args: argparse.Namespace) -> Settings:
    namespaces = args.namespace or [n for n in _env("NAMESPACES", "").split(",") if n]
    return dataclasses.replace(
        _DEFAULTS,
        namespaces=tuple(namespaces),
        pod_selector=args.pod_selector,
        kubeconfig=args.kubeconfig,
        helper_image=args.helper_image,
        peering=args.peering,
        priority=args.priority,
        sweep_interval=args.sweep_interval,
        sweep_action=args.sweep_action,
        stuck_after=args.stuck_after,
        sweep_max_actions=args.sweep_max_actions,
        sweep_allow_delete=args.sweep_allow_delete,
        exec_timeout=args.exec_timeout,
        exec_concurrency=args.exec_concurrency,
        exec_retries=args.exec_retries,
        exec_backoff=args.exec_backoff,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        policy_status_interval=args.policy_status_interval,
        log_format=args.log_format,
        log_level=args.log_level,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "explain":
        return explain_command.run(args.pod, args.namespace, args.output, args.kubeconfig)
    if args.command == "run":
        settings = settings_from(args)
        configure_logging(settings.log_format, settings.log_level)
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
