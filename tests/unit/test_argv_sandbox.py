"""Values from pods and policies never become shell text: the argv that Tandem execs, built from
hostile paths, ports, container IDs and signals, run in a real `sh` in a sandbox whose PATH holds
only recording stand-ins. Only the intended program may run, with the value as one argument."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.core import ActionKind, StopAction
from tandem.core.finish.routes import argv_for
from tandem.core.model.stop import StopPath

PROGRAMS = ("wget", "curl", "kill", "grep", "touch", "rm", "echo", "cat", "id", "sh")
HOSTILE = [
    "$(touch INJECTED)",
    "`touch INJECTED`",
    ";touch INJECTED",
    "|touch INJECTED",
    "&&touch INJECTED",
    "'\"; touch INJECTED; \"'",
    "${IFS}touch${IFS}INJECTED",
    "#",
    "\n touch INJECTED",
    "$((1+1))",
    "*",
    "-O /tmp/x",
    "\u202e\x1b[31m",
]
EXAMPLES = 10_000 if os.environ.get("CI") == "true" else 300


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sandbox")
    (root / "bin").mkdir()
    for name in PROGRAMS:
        if name == "sh":
            continue
        stub = root / "bin" / name
        # Records its name and its arguments, each ended by \037, the call by \036; succeeds.
        stub.write_text(
            f'#!/bin/sh\nprintf \'%s\\037\' {name} "$@" >> "$SANDBOX_LOG"\n'
            "printf '\\036' >> \"$SANDBOX_LOG\"\n"
        )
        stub.chmod(0o755)
    return root


def _run(sandbox: Path, argv: tuple[str, ...], tmp: Path) -> tuple[list[list[str]], list[str]]:
    """The calls the stand-ins recorded (name, then arguments), and what appeared in the work
    directory."""
    log = tmp / "log"
    log.write_bytes(b"")
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    env = {"PATH": str(sandbox / "bin"), "SANDBOX_LOG": str(log)}
    subprocess.run(argv, cwd=work, env=env, capture_output=True, timeout=10, check=False)
    calls = log.read_bytes().decode("utf-8", "surrogateescape").split("\036")[:-1]
    return [call.split("\037")[:-1] for call in calls], sorted(os.listdir(work))


path_text = st.lists(
    st.sampled_from([*"abc/$`;|&'\"(){}<>#*?~!\\ \t\n=-.", "${IFS}", "$(", "\u202e", "\x1b"]),
    max_size=20,
).map("".join) | st.sampled_from(HOSTILE)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(path=path_text, post=st.booleans(), port=st.integers(1, 65535))
def test_an_http_stop_runs_wget_with_the_url_as_one_argument(
    sandbox: Path, tmp_path: Path, path: str, post: bool, port: int
) -> None:
    kind = ActionKind.HTTP_POST if post else ActionKind.HTTP_GET
    url_path = "/" + path.replace("\x00", "")
    argv = argv_for(StopAction(kind, port=port, path=url_path), StopPath.EXEC, "")
    assert argv[:2] == ("/bin/sh", "-c")
    calls, created = _run(sandbox, argv, tmp_path)
    url = f"http://127.0.0.1:{port}{url_path}"
    expected = ["wget", "-q", "-O", "/dev/null", *(["--post-data="] if post else []), url]
    assert calls == [expected]
    assert created == []


container_ids = st.text(st.sampled_from([*"0123456789abcdef$;`()| '*"]), max_size=70) | st.just(
    "0123456789abcdef" * 4
)


@settings(
    max_examples=EXAMPLES // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(container_id=container_ids, signal=st.sampled_from(["TERM", "KILL", "USR1"]))
def test_the_shared_pid_stop_takes_the_container_id_as_data(
    sandbox: Path, tmp_path: Path, container_id: str, signal: str
) -> None:
    action = StopAction(ActionKind.SIGNAL, signal=signal)
    argv = argv_for(action, StopPath.SHARED_PID, f"containerd://{container_id}")
    calls, created = _run(sandbox, argv, tmp_path)
    valid = len(container_id) == 64 and all(c in "0123456789abcdef" for c in container_id)
    assert {call[0] for call in calls} <= ({"grep", "kill"} if valid else set()), calls
    for call in calls:
        if call[0] == "grep":
            assert call[1:4] == ["-qF", "--", container_id]
        else:
            assert call[1:3] == ["-s", signal] and call[3] not in ("1", "")
    assert created == []
