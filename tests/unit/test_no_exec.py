"""An install without pods/exec (--no-exec): pods finish by phase only, the kubelet stops the
sidecars, and what cannot be done is said once."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.cli import main as cli
from tandem.core import (
    CoreSettings,
    Finish,
    Monotonic,
    Phase,
    PodMemory,
    Report,
    Stop,
    decide,
    parse_pod,
    resolve,
)

from .pods import PRIMARY, failed_in_back_off, pod, running, status, terminated

HAPROXY = "docker.io/library/haproxy:2.8"


def run(body: dict[str, Any], keeps: bool = True, memory: PodMemory | None = None) -> Any:
    view = parse_pod(body)
    policy = resolve(view.labels, view.annotations, ()).policy
    return decide(
        view,
        policy,
        memory or PodMemory(),
        Monotonic(100.0),
        CoreSettings(kubelet_keeps_phase=keeps, exec_stops=False),
    )


def of(decision: Any, kind: type) -> list[Any]:
    return [a for a in decision.actions if isinstance(a, kind)]


def ended(code: int, annotations: dict[str, str] = PRIMARY, **extra: Any) -> dict[str, Any]:
    return pod(
        ["main", "proxy"],
        [status("main", terminated(code, "c1")), status("proxy", running("c2"))],
        annotations=annotations,
        images={"proxy": HAPROXY},
        resource_version="42",
        **extra,
    )


def test_success_is_a_phase_write_and_no_exec_even_for_a_known_graceful_stop() -> None:
    decision = run(ended(0))
    assert of(decision, Stop) == []
    [finish] = of(decision, Finish)
    assert finish.phase is Phase.SUCCEEDED and "proxy: the kubelet stops it" in finish.message


def test_finish_exit_codes_cannot_be_honoured_so_the_phase_is_written() -> None:
    decision = run(ended(0, {**PRIMARY, "tandem.dev/finish": "ExitCodes"}))
    assert of(decision, Stop) == [] and of(decision, Finish)[0].phase is Phase.SUCCEEDED


def test_an_onfailure_failure_replaces_the_pod() -> None:
    body = failed_in_back_off(status("proxy", running("c2")))
    decision = run(body)
    assert of(decision, Stop) == []
    [finish] = of(decision, Finish)
    assert finish.phase is Phase.FAILED and "replaces the pod" in finish.message


def test_without_exec_the_phase_is_the_only_way_whatever_the_core_is_told_of_the_node() -> None:
    # A node that then does not keep it gets PodFinishNotKept (test_finish), not silence.
    for keeps in (True, False):
        decision = run(ended(0), keeps=keeps)
        assert of(decision, Stop) == [] and of(decision, Report) == []
        [finish] = of(decision, Finish)
        assert finish.phase is Phase.SUCCEEDED


def test_with_no_sidecar_running_nothing_is_written() -> None:
    body = pod(
        ["main", "proxy"],
        [status("main", terminated(0, "c1")), status("proxy", terminated(0, "c2"))],
        annotations=PRIMARY,
    )
    assert run(body).actions == ()


@pytest.mark.parametrize("other", [["--helper-image=busybox"], ["--allow-exec-actions"]])
def test_no_exec_refuses_the_flags_that_exec(
    monkeypatch: pytest.MonkeyPatch, other: list[str]
) -> None:
    monkeypatch.setattr(cli, "serve", lambda settings: pytest.fail("started with bad settings"))
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--no-exec", *other])
    assert exited.value.code == 2


def test_no_exec_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    async def serve(settings: Any) -> None:
        seen.append(settings)

    monkeypatch.setattr(cli, "serve", serve)
    cli.main(["run", "--no-exec"])
    assert [s.exec_stops for s in seen] == [False]
