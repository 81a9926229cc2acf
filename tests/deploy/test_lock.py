"""The locks, offline (deploy/local/lock.sh compiles them): every dependency of the project is in
them, pinned `==` to a version its range allows and with sha256 hashes; both image builds install
from the runtime lock with --require-hashes --no-deps (so nothing outside it reaches the image), the
build backend likewise; the development venv is installed from the dev lock, which pins every
package of those two at the same version, so the tests run what the image ships."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .chart import ROOT

LOCK = ROOT / "operator" / "requirements.lock"
BUILD_LOCK = ROOT / "operator" / "build-requirements.lock"
DEV_LOCK = ROOT / "operator" / "dev-requirements.lock"
BENCH_LOCK = ROOT / "operator" / "bench-requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
# The image's interpreter: Debian bookworm's CPython 3.11 on x86-64 (markers are judged for it).
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>\S+)(?P<options>(?:\s.*)?)$")
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    hashes: tuple[str, ...]


def lock_lines(text: str) -> list[str]:
    """The requirement lines, continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [re.sub(r"(^|\s)#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line]


def parse_lock(text: str) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    for line in lock_lines(text):
        match = _LINE.match(line)
        assert match, f"not pinned with ==: {line!r}"
        options = match["options"].split()
        assert options, f"{match['name']} has no --hash line"
        bad = [o for o in options if not _HASH.match(o)]
        assert not bad, f"{match['name']}: only --hash=sha256:<64 hex> may follow a pin, got {bad}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{name} is pinned twice"
        pins[name] = Pin(name, Version(match["version"]), tuple(options))
    return pins


def runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def needed(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(IMAGE_ENVIRONMENT)


def missing_or_outside(requirements: list[Requirement], pins: dict[str, Pin]) -> list[str]:
    """The requirements that the lock lacks, or pins to a version outside their range."""
    wrong = []
    for requirement in filter(needed, requirements):
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            wrong.append(f"{requirement}: not in the lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            wrong.append(f"{requirement}: the lock pins {pin.version}")
    return wrong


def test_every_line_of_every_lock_is_pinned_and_hashed() -> None:
    for lock in (LOCK, BUILD_LOCK, DEV_LOCK, BENCH_LOCK):
        pins = parse_lock(lock.read_text())
        assert len(pins) >= len(build_requirements())
        assert all(pin.hashes for pin in pins.values())
    assert len(parse_lock(LOCK.read_text())) >= len(runtime_dependencies())


def test_every_runtime_dependency_is_locked_within_its_range() -> None:
    pins = parse_lock(LOCK.read_text())
    assert missing_or_outside(runtime_dependencies(), pins) == []


def extra_dependencies(extra: str) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][extra]]


def test_the_dev_and_bench_locks_hold_their_extras_within_range() -> None:
    dev = parse_lock(DEV_LOCK.read_text())
    wanted = runtime_dependencies() + extra_dependencies("test") + build_requirements()
    assert missing_or_outside(wanted, dev) == []
    bench = parse_lock(BENCH_LOCK.read_text())
    assert missing_or_outside(wanted + extra_dependencies("bench"), bench) == []


def test_every_lock_pins_a_shared_package_alike() -> None:
    """The dev lock is compiled under the runtime and build locks, the bench lock under the dev
    lock (lock.sh): the tests run the image's versions, with the image's hashes."""
    for narrow, wide in ((LOCK, DEV_LOCK), (BUILD_LOCK, DEV_LOCK), (DEV_LOCK, BENCH_LOCK)):
        inner, outer = parse_lock(narrow.read_text()), parse_lock(wide.read_text())
        assert set(inner) <= set(outer), f"{wide.name} lacks {set(inner) - set(outer)}"
        differ = {n: (p, outer[n]) for n, p in inner.items() if p != outer[n]}
        assert differ == {}, f"{narrow.name} and {wide.name} disagree"


def test_the_venv_is_the_dev_lock() -> None:
    """host-setup.sh installs exactly the dev lock (or the bench lock, which holds it): every pin
    at its version. So what is newest upstream on the day of an install changes nothing."""
    pins = parse_lock(DEV_LOCK.read_text())
    installed = {
        name: importlib.metadata.distribution(name).version for name in pins if _installed(name)
    }
    assert installed == {name: str(pin.version) for name, pin in pins.items()}


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_each_lock_is_closed_under_the_dependencies_of_its_pins() -> None:
    """Read from the installed packages' metadata; the venv is the dev lock (above), so each pin
    of the runtime, build and dev locks is checked, and the bench lock's where it is installed."""
    checked = 0
    for lock in (LOCK, BUILD_LOCK, DEV_LOCK, BENCH_LOCK):
        pins = parse_lock(lock.read_text())
        wrong = []
        for pin in pins.values():
            if not _installed(pin.name):
                continue
            installed = importlib.metadata.distribution(pin.name)
            assert Version(installed.version) == pin.version, (lock.name, pin.name)
            checked += 1
            requirements = [Requirement(r) for r in installed.requires or ()]
            wrong += [f"{pin.name} needs {w}" for w in missing_or_outside(requirements, pins)]
        assert wrong == [], lock.name
    assert checked >= len(parse_lock(DEV_LOCK.read_text()))


def test_a_lock_missing_a_dependency_of_a_pin_is_caught() -> None:
    """The closure check above, on a runtime lock without aiohttp (which kopf needs)."""
    pins = parse_lock(LOCK.read_text())
    del pins["aiohttp"]
    kopf = importlib.metadata.distribution("kopf")
    needs = [Requirement(r) for r in kopf.requires or ()]
    assert [w for w in missing_or_outside(needs, pins) if w.startswith("aiohttp")]


def test_a_missing_dependency_or_an_unhashed_line_is_caught() -> None:
    """The checks above, on a lock that lacks pykube-ng and one with a line without a hash."""
    text = LOCK.read_text()
    without = re.sub(r"(?ms)^pykube-ng==.*?(?=^\S)", "", text)
    [pykube] = [r for r in runtime_dependencies() if r.name == "pykube-ng"]
    assert missing_or_outside(runtime_dependencies(), parse_lock(without)) == [
        f"{pykube}: not in the lock"
    ]
    try:
        parse_lock(text + "\nsix==1.16.0\n")
    except AssertionError as err:
        assert "six has no --hash" in str(err)
    else:
        raise AssertionError("a line without a hash passed")


def build_requirements() -> list[Requirement]:
    build_system = tomllib.loads(PYPROJECT.read_text())["build-system"]
    return [Requirement(r) for r in build_system["requires"]]


def test_the_build_backend_is_locked_within_its_range_and_hashed() -> None:
    """hatchling and what it needs, so that no image build fetches an unpinned backend."""
    pins = parse_lock(BUILD_LOCK.read_text())
    assert missing_or_outside(build_requirements(), pins) == []
    assert {"hatchling", "packaging", "pathspec", "pluggy", "trove-classifiers"} <= set(pins)
    source = (ROOT / "operator" / "build-requirements.in").read_text()
    assert [str(r) for r in build_requirements()] == [
        line for line in source.splitlines() if line and not line.startswith("#")
    ], "build-requirements.in must repeat pyproject's [build-system] requires"


def test_both_image_builds_install_only_from_the_locks_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY operator/requirements.lock" in dockerfile
    installs = re.findall(r"pip install[^&]*", dockerfile.replace("\\\n", " "))
    assert len(installs) == 3
    assert all("--no-deps" in i for i in installs)
    backend, dependencies, _ = installs
    assert "--require-hashes" in backend and "-r operator/build-requirements.lock" in backend
    assert "--require-hashes" in dependencies and "-r /tmp/requirements.lock" in dependencies
    assert "pip wheel --no-cache-dir --no-deps --no-build-isolation" in dockerfile

    script = (ROOT / "deploy" / "local" / "images" / "operator_image.py").read_text()
    assert 'LOCK = ROOT / "operator" / "requirements.lock"' in script
    assert '"--require-hashes", "-r", str(LOCK)' in script
    assert '"--require-hashes", "-r", str(BUILD_LOCK)]' in script
    assert '"--no-build-isolation"' in script
    assert '"--no-deps",' in script


def test_host_setup_installs_the_venv_from_the_dev_lock_only() -> None:
    script = (ROOT / "deploy" / "local" / "host-setup.sh").read_text().replace("\\\n", " ")
    assert "lock=operator/dev-requirements.lock" in script
    assert "lock=operator/bench-requirements.lock" in script
    installs = re.findall(r"pip install[^\n]*", script)
    assert len(installs) == 2
    from_lock, project = installs
    assert "--require-hashes" in from_lock and '--no-deps -r "$lock"' in from_lock
    assert "--no-deps --no-build-isolation -e ." in project
    assert "--upgrade" not in script
