"""`tandem run` and `tandem explain`: one click group. Each of run's flags has its TANDEM_*
variable, its bounds and the Settings default; flags and environment map onto Settings here, and
only here (`run`)."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from tandem.runtime import Settings, configure_logging, serve

from . import explain as explain_command

_DEFAULTS = Settings()
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


class Name(click.ParamType[str]):
    """An exact Kubernetes name: a DNS-1123 label (a namespace) or subdomain (a cluster-scoped
    object, a pod). In a variable, several are comma-separated, and empty items are dropped."""

    envvar_list_splitter = ","

    def __init__(self, name: str, pattern: str, longest: int, *, rules: str, empty: bool = False):
        self.name, self.rules, self.empty = name, rules, empty
        self._pattern, self._longest = re.compile(pattern), longest

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text == "" and self.empty:
            return text
        if len(text) > self._longest or not self._pattern.fullmatch(text):
            self.fail(f"{text!r} is not {self.name}: {self.rules}", param, ctx)
        return text

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return [item for item in rv.split(",") if item]


NAMESPACE = Name(
    "a namespace name",
    _LABEL,
    63,
    rules="lowercase letters, digits and '-', at most 63. Tandem watches namespaces by exact "
    "name: a pattern would be dropped, and the operator would watch nothing there",
)
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_SUBDOMAIN_RULES = "lowercase letters, digits, '-' and '.', at most 253"
OBJECT_NAME = Name("an object name", _SUBDOMAIN, 253, rules=_SUBDOMAIN_RULES)
"""A DNS-1123 subdomain, as Kubernetes names pods and cluster-scoped objects."""
PEERING = Name("an object name", _SUBDOMAIN, 253, rules=_SUBDOMAIN_RULES, empty=True)
"""An object name (it goes into the path of Tandem's own requests for the peering), or empty:
standalone."""


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and infinity."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = float(super().convert(value, param, ctx))
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


SECONDS = Finite(min=0)
PORT = click.IntRange(0, 65535)


class IpAddress(click.ParamType[str]):
    """An IPv4 or IPv6 address, as listening sockets take it (no name to resolve)."""

    name = "ip address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return str(ipaddress.ip_address(str(value)))
        except ValueError:
            self.fail(f"{value!r} is not an IPv4 or IPv6 address", param, ctx)


IP_ADDRESS = IpAddress()
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def setting(field: str, help: str, *names: str, **kwargs: Any) -> Decorator:
    """An option of `run` for the Settings FIELD: the flag --field-name (or NAMES), the variable
    TANDEM_FIELD_NAME, the dataclass's default."""
    flag = "--" + field.replace("_", "-")
    kwargs.setdefault("default", getattr(_DEFAULTS, field))
    return click.option(
        *(names or (flag,)),
        field,
        envvar=kwargs.pop("envvar", "TANDEM_" + field.upper()),
        show_default=True,
        show_envvar=True,
        help=help,
        **kwargs,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Finishes Job pods whose sidecars outlive their primary containers."""


@cli.command()
@setting(
    "namespaces",
    "Watch this namespace, by its exact name (repeatable; none: the whole cluster). In the "
    "variable, comma-separated.",
    "--namespace",
    "-n",
    type=NAMESPACE,
    metavar="NAME",
    multiple=True,
)
@setting("pod_selector", "Extra label selector for Job pods, applied by the API server.")
@setting(
    "kubeconfig",
    "Kubeconfig file (none: the pod's service account).",
    envvar="KUBECONFIG",
    type=click.Path(exists=True, dir_okay=False),
)
@setting(
    "peering",
    "Name of the ClusterKopfPeering (also when watching namespaces) where replicas meet, so "
    "that exactly one acts (empty: standalone).",
    type=PEERING,
    metavar="NAME",
)
@setting(
    "priority",
    "This replica's peering priority (none: by start, the oldest replica acts).",
    type=int,
)
@setting(
    "helper_image",
    "Image of the ephemeral helper for sidecars without a shell (with sh, kill and wget); "
    "empty turns the helper path off.",
)
@setting(
    "sweep_action",
    "What the sweep does to annotation-only pods (policies set their own).",
    type=click.Choice(["Terminate", "Delete", "Report"]),
)
@setting(
    "sweep_allow_delete",
    "Let the sweep delete pods (needs delete on pods in RBAC).",
    is_flag=True,
)
@setting(
    "allow_exec_actions",
    "Let SidecarPolicies' exec actions run commands in sidecars (off: whoever may write "
    "policies cannot make Tandem run commands).",
    is_flag=True,
)
@setting(
    "pods_without_job",
    "Let SidecarPolicies opt in pods that no Job owns (podsWithoutJob); the pod watch then "
    "covers every pod, not only Job pods.",
    is_flag=True,
)
@click.option(
    "--no-exec",
    is_flag=True,
    envvar="TANDEM_NO_EXEC",
    show_envvar=True,
    help="Never exec into pods, so RBAC needs no pods/exec: pods finish by phase only and the "
    "kubelet stops their sidecars.",
)
@setting(
    "sweep_interval",
    "Seconds between sweeps for stuck and orphaned pods; 0 turns the sweeper off.",
    type=SECONDS,
)
@setting(
    "stuck_after",
    "Seconds after the primaries ended at which a running pod counts as stuck.",
    type=SECONDS,
)
@setting("sweep_max_actions", "Most pods one sweep acts on.", type=click.IntRange(min=0))
@setting(
    "exec_timeout",
    "Seconds one exec into a sidecar (or one phase write) may take, connection included; more "
    "than 0, or every exec counts as timed out before its answer is read.",
    type=Finite(min=0, min_open=True),
)
@setting(
    "exec_concurrency",
    "Execs in flight at once, when many Jobs end together (each on its own thread).",
    type=click.IntRange(min=1),
)
@setting(
    "exec_retries",
    "Tries per stop and phase write, the first included, when the API server answers 429, "
    "500, 502 or 503 or cannot be reached (never after a timeout: the command may have run).",
    type=click.IntRange(min=1),
)
@setting(
    "exec_backoff",
    "Seconds before the first retry of an exec; doubled after each.",
    type=SECONDS,
)
@setting(
    "listen_address",
    "IP address of the liveness and metrics endpoints (0.0.0.0: every interface, as in a cluster).",
    type=IP_ADDRESS,
)
@setting("liveness_port", "Port of Kopf's liveness endpoint, /healthz; 0 turns it off.", type=PORT)
@setting("metrics_port", "Port of the Prometheus endpoint, /metrics; 0 turns it off.", type=PORT)
@setting(
    "policy_status_interval",
    "Seconds between writes of SidecarPolicy status counters.",
    type=SECONDS,
)
@setting("log_format", "Log lines as text or JSON objects.", type=click.Choice(["text", "json"]))
@setting("log_level", "Least level logged.", type=click.Choice(LOG_LEVELS, case_sensitive=False))
def run(no_exec: bool, **fields: Any) -> None:
    """Run the operator."""
    if no_exec and (fields["helper_image"] or fields["allow_exec_actions"]):
        raise click.UsageError(
            "--no-exec / TANDEM_NO_EXEC: the helper (--helper-image / TANDEM_HELPER_IMAGE) and "
            "policies' exec actions (--allow-exec-actions / TANDEM_ALLOW_EXEC_ACTIONS) both exec "
            "into pods; leave them off, or drop --no-exec"
        )
    settings = Settings(exec_stops=not no_exec, **fields)
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))


@cli.command()
@click.argument("pod", type=OBJECT_NAME)
@click.option(
    "--namespace",
    "-n",
    type=NAMESPACE,
    metavar="NAME",
    default="default",
    show_default=True,
    help="The pod's namespace.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="For people, or for programs.",
)
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Kubeconfig file (none: the pod's service account).",
)
def explain(pod: str, namespace: str, output: str, kubeconfig: str | None) -> int:
    """Say why a Job pod is where it is."""
    return explain_command.run(pod, namespace, output, kubeconfig)


def main(argv: Sequence[str] | None = None) -> int:
    """0, or explain's answer; a bad option or value exits 2 with click's message, which names
    the flag and its variable."""
    try:
        return int(cli.main(args=argv, prog_name="tandem", standalone_mode=False) or 0)
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    except click.Abort:
        click.echo("Aborted!", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    sys.exit(main())
