"""`tandem run`'s options: each bound refuses the value just outside it, by flag and by variable,
with exit 2 and click's message naming both; the value just inside reaches Settings; and every flag
that deploy/ and the chart pass parses."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import click
import pytest

from tandem.cli import main as cli
from tandem.runtime import Settings

from ..deploy.chart import args as operator_args
from ..deploy.chart import kustomize

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
CHART_DEPLOYMENT = DEPLOY / "helm" / "tandem" / "templates" / "deployment.yaml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TANDEM_* variable or KUBECONFIG of the machine's reaches these tests."""
    for name in list(os.environ):
        if name.startswith("TANDEM_") or name == "KUBECONFIG":
            monkeypatch.delenv(name)


def parse(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str] | None = None
) -> Settings:
    """The Settings that `tandem run ARGV` starts with, under ENV; the operator does not start."""
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    started: list[Settings] = []
    monkeypatch.setattr(cli, "serve", started.append)
    monkeypatch.setattr("tandem.cli.main.asyncio.run", lambda _: None)
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)
    assert cli.main(["run", *argv]) == 0
    [settings] = started
    return settings


def refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str] | None = None,
) -> str:
    """Click's error for `tandem run ARGV` under ENV, after checking that it exits 2 unstarted."""
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "serve", lambda settings: pytest.fail("started with bad settings"))
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", *argv])
    assert exited.value.code == 2
    return capsys.readouterr().err


def variable(flag: str) -> str:
    return {"--namespace": "TANDEM_NAMESPACES"}.get(
        flag, "TANDEM_" + flag.removeprefix("--").replace("-", "_").upper()
    )


def field(flag: str) -> str:
    return {"--namespace": "namespaces"}.get(flag, flag.removeprefix("--").replace("-", "_"))


BOUNDS: list[tuple[str, str, Any]] = [
    # (flag, the value just outside its bound, the value just inside, as Settings holds it)
    ("--exec-retries", "0", 1),
    ("--exec-concurrency", "0", 1),
    ("--exec-timeout", "0", 0.001),
    ("--exec-timeout", "nan", 0.001),
    ("--exec-backoff", "-0.001", 0.0),
    ("--exec-backoff", "inf", 0.0),
    ("--sweep-interval", "-0.001", 0.0),
    ("--sweep-interval", "-inf", 0.0),
    ("--stuck-after", "-0.001", 0.0),
    ("--sweep-max-actions", "-1", 0),
    ("--policy-status-interval", "-0.001", 0.0),
    ("--liveness-port", "-1", 0),
    ("--liveness-port", "65536", 65535),
    ("--metrics-port", "-1", 0),
    ("--metrics-port", "65536", 65535),
    ("--sweep-action", "Kill", "Report"),
    ("--sweep-action", "terminate", "Delete"),
    ("--log-format", "xml", "json"),
    ("--log-level", "VERBOSE", "WARNING"),
    ("--peering", "a" * 254, "a" * 253),
    ("--peering", "Tandem", "tandem.dev"),
    ("--peering", "tandem/../../namespaces", "tandem"),
    ("--peering", "-tandem", ""),
    ("--namespace", "a" * 64, ("a" * 63,)),
    ("--namespace", "Jobs", ("jobs",)),
    ("--namespace", "team-*", ("team-a",)),
    ("--namespace", "!kube-system", ("kube-system",)),
    ("--namespace", "jobs?", ("jobs",)),
    ("--namespace", "", ("jobs",)),
    ("--listen-address", "localhost", "0.0.0.0"),  # an address, not a name to resolve
    ("--listen-address", "127.0.0.256", "::1"),
]


@pytest.mark.parametrize(("flag", "outside", "inside"), BOUNDS)
def test_a_value_just_outside_a_bound_is_refused_by_flag_and_by_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    outside: str,
    inside: Any,
) -> None:
    name = variable(flag)
    for error in (
        refused(monkeypatch, capsys, [f"{flag}={outside}"]),
        *([refused(monkeypatch, capsys, [], {name: outside})] if outside else []),
    ):
        assert f"Invalid value for '{flag}'" in error, error
        assert f"'{name}'" in error, error
    monkeypatch.delenv(name, raising=False)
    value = inside[0] if isinstance(inside, tuple) else inside
    assert getattr(parse(monkeypatch, [f"{flag}={value}"]), field(flag)) == inside
    assert getattr(parse(monkeypatch, [], {name: str(value)}), field(flag)) == (
        inside if value != "" else getattr(Settings(), field(flag))
    )


def test_without_flags_or_variables_the_settings_are_the_dataclass_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse(monkeypatch, []) == Settings()


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse(
        monkeypatch,
        ["--exec-retries=5", "--namespace=jobs"],
        {"TANDEM_EXEC_RETRIES": "2", "TANDEM_NAMESPACES": "other"},
    )
    assert (settings.exec_retries, settings.namespaces) == (5, ("jobs",))


def test_the_namespaces_variable_is_comma_separated_and_skips_empty_items(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = parse(monkeypatch, [], {"TANDEM_NAMESPACES": "jobs,,team-a,"})
    assert settings.namespaces == ("jobs", "team-a")
    error = refused(monkeypatch, capsys, [], {"TANDEM_NAMESPACES": "jobs,team-*"})
    assert "'team-*' is not a namespace name" in error


@pytest.mark.parametrize(
    ("flag", "attribute", "on"),
    [
        ("--sweep-allow-delete", "sweep_allow_delete", True),
        ("--allow-exec-actions", "allow_exec_actions", True),
        ("--no-exec", "exec_stops", False),
    ],
)
def test_a_switch_is_set_by_its_flag_or_its_variable_and_nonsense_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    attribute: str,
    on: bool,
) -> None:
    name = variable(flag)
    assert getattr(parse(monkeypatch, []), attribute) is not on
    assert getattr(parse(monkeypatch, [flag]), attribute) is on
    assert getattr(parse(monkeypatch, [], {name: "true"}), attribute) is on
    assert getattr(parse(monkeypatch, [], {name: "false"}), attribute) is not on
    error = refused(monkeypatch, capsys, [], {name: "sure"})
    assert f"'{flag}'" in error and f"'{name}'" in error


def test_text_options_and_the_kubeconfig_take_their_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, other = tmp_path / "config", tmp_path / "other"
    config.touch()
    other.touch()
    settings = parse(
        monkeypatch,
        [],
        {
            "TANDEM_POD_SELECTOR": "team=batch",
            "TANDEM_HELPER_IMAGE": "busybox",
            "TANDEM_PRIORITY": "7",
            "KUBECONFIG": str(config),
        },
    )
    assert (settings.pod_selector, settings.helper_image, settings.priority) == (
        "team=batch",
        "busybox",
        7,
    )
    assert settings.kubeconfig == str(config)
    assert parse(monkeypatch, [f"--kubeconfig={other}"]).kubeconfig == str(other)
    error = refused(monkeypatch, capsys, [], {"KUBECONFIG": str(tmp_path / "missing")})
    assert "'--kubeconfig'" in error and "'KUBECONFIG'" in error and "does not exist" in error


def test_every_setting_but_the_peering_lifetime_has_a_flag_a_variable_and_help() -> None:
    options = [p for p in cli.run.params if isinstance(p, click.Option)]
    for option in options:
        assert option.envvar and option.help and option.show_envvar, option.name
    names = {o.name for o in options} - {"no_exec"} | {"exec_stops"}
    assert names == {f.name for f in dataclasses.fields(Settings)} - {"peering_lifetime"}


def _manifest_args() -> list[list[str]]:
    """The operator's args as deploy/base and each overlay render them (`kubectl kustomize`,
    offline; skipped where the local cluster's kubectl is not built)."""
    overlays = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
    return [operator_args(kustomize(path)) for path in (DEPLOY / "base", *overlays)]


CHART_SAMPLES = {
    "--peering": "tandem",
    "--helper-image": "local.invalid/tandem/busybox:local",
    "--namespace": "jobs",
    "--sweep-action": "Delete",
    "--metrics-port": "9091",
}
"""A value for each flag whose value the chart fills from its values."""


def _chart_flags() -> list[str]:
    """Each flag of the chart's operator container, its template filled with a sample value."""
    flags = []
    for line in CHART_DEPLOYMENT.read_text().splitlines():
        if found := re.search(r"(--[a-z][-a-z]*)(=?)(.*)", line):
            flag, equals, rest = found.groups()
            flags.append(flag + equals + (CHART_SAMPLES[flag] if "{{" in line else rest))
    return flags


def test_every_flag_the_manifests_and_the_chart_pass_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifests = _manifest_args()
    assert len(manifests) >= 3, manifests
    for args in manifests:
        assert args[0] == "run", args
        parse(monkeypatch, args[1:])
    chart = _chart_flags()
    assert {"--no-exec", "--sweep-allow-delete", "--log-format=json"} <= set(chart), chart
    assert {f.split("=")[0] for f in chart} >= set(CHART_SAMPLES)
    for flag in chart:
        parse(monkeypatch, [flag])


def test_the_endpoints_listen_on_loopback_unless_asked() -> None:
    assert Settings().listen_address == "127.0.0.1"
