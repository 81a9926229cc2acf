"""A fresh machine needs nothing by hand: every external program that the build, the images and
the tests run comes from a Debian package that deploy/local/host-setup.sh installs, from a
required Debian package (on every Debian system), from a prerequisite that host-setup names
(Go, Python), or from the project's own build. A missing one fails here, with its name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .programs import RUN_BY_COMPONENTS, programs, python_programs, shell_programs_in

ROOT = Path(__file__).resolve().parents[2]
HOST_SETUP = ROOT / "deploy" / "local" / "host-setup.sh"
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/go/bin", "/usr/sbin"])

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian host")


def host_setup_array(name: str) -> list[str]:
    match = re.search(rf"^{name}=\(([^)]*)\)", HOST_SETUP.read_text(), re.MULTILINE)
    assert match, f"host-setup.sh defines no {name}=(...)"
    return match.group(1).split()


def _dpkg(*args: str) -> str | None:
    done = subprocess.run(["dpkg-query", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def package_of(path: str) -> str | None:
    """The Debian package that installed PATH (through links, and across the /usr merge)."""
    candidates = []
    for found in (path, os.path.realpath(path)):
        candidates += [found, found.removeprefix("/usr"), "/usr" + found]
    for candidate in dict.fromkeys(candidates):
        if owner := _dpkg("-S", candidate):
            return owner.split(":", 1)[0].split(",")[0].strip()
    return None


def is_required(package: str) -> bool:
    fields = _dpkg("-W", "-f=${Essential} ${Priority}", package) or ""
    return "yes" in fields.split() or "required" in fields.split()


def origin(program: str, packages: list[str], prerequisites: list[str]) -> str:
    """Where PROGRAM comes from; AssertionError with the fix when nothing provides it."""
    if program in prerequisites:
        return "a prerequisite"
    path = program if program.startswith("/") else shutil.which(program, path=SEARCH_PATH)
    if path is None or not os.path.exists(path):
        raise AssertionError(
            f"{program}: not found on this machine; add the Debian package that provides it to "
            "PACKAGES in deploy/local/host-setup.sh"
        )
    if Path(path).resolve().is_relative_to(ROOT):
        return "the project"
    package = package_of(path)
    if package is None:
        raise AssertionError(f"{program}: {path} belongs to no Debian package nor the project")
    if package in packages:
        return f"{package} (host-setup)"
    if is_required(package):
        return f"{package} (required)"
    raise AssertionError(
        f"{program}: from the Debian package {package}, which host-setup.sh does not install; "
        "add it to PACKAGES there"
    )


def test_every_program_the_project_runs_is_installed_by_host_setup() -> None:
    packages, prerequisites = host_setup_array("PACKAGES"), host_setup_array("PREREQUISITES")
    found = {program: sorted(files) for program, files in programs().items()}
    found |= {program: [why] for program, why in RUN_BY_COMPONENTS.items()}
    problems = []
    for program, files in sorted(found.items()):
        try:
            origin(program, packages, prerequisites)
        except AssertionError as missing:
            problems.append(f"{missing} (run by {', '.join(files)})")
    assert not problems, "\n".join(problems)


def test_a_package_left_out_of_host_setup_fails_with_the_program_it_provides() -> None:
    packages = [p for p in host_setup_array("PACKAGES") if p != "debootstrap"]
    with pytest.raises(AssertionError, match=r"debootstrap: .*add it to PACKAGES"):
        origin("debootstrap", packages, host_setup_array("PREREQUISITES"))


def test_a_program_missing_from_the_machine_fails_with_its_name() -> None:
    with pytest.raises(AssertionError, match="tandem-no-such-tool: not found"):
        origin("tandem-no-such-tool", host_setup_array("PACKAGES"), [])


def test_the_scanner_finds_programs_in_each_form(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text(
        "import subprocess\n"
        'SH = \'mount --bind "$1" /bin/sh && exec "$@"\'\n'
        "subprocess.run(['debootstrap', '--variant=minbase'])\n"
        "argv = ['unshare', '--mount', 'bash', '-c', SH]\n"
        "pod = {'command': ['haproxy-in-a-pod', '-db']}\n"
    )
    assert set(python_programs(script)) == {"debootstrap", "unshare", "mount"}
    shell = (
        "f() { :; }\nPKGS=(a-package\n  another)\nx=$(git rev-parse HEAD) && f | sha256sum\n"
        "cat <<EOF\nnot-a-command here\nEOF\nif ((n > 1)); then apt-get update; fi\n"
        'echo "quoted; words-are-not | commands"\n'
    )
    assert set(shell_programs_in(shell)) == {"git", "sha256sum", "cat", "apt-get"}
