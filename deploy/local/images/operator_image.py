#!/usr/bin/env python3
"""Builds local.invalid/tandem/operator:local without a Docker engine, equivalent to the Dockerfile.

Same base family (Debian bookworm's Python 3.11), same user (65532), same entrypoint
(`python3 -m tandem`, command `run`). The root filesystem comes from `debootstrap` with Debian's
packages (mirror taken from this machine's apt sources), the dependencies from PyPI as wheels,
pinned and hashed by operator/requirements.lock, then the project's own wheel. Cached by the hash
of the project's sources, the lock and this script.

    operator_image.py [--out DIR] [--import --address SOCK]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import build_images as images

ROOT = Path(__file__).resolve().parents[3]
SUITE = "bookworm"
SITE = "/opt/tandem/site"
USER = 65532
LOCK = ROOT / "operator" / "requirements.lock"
BUILD_LOCK = ROOT / "operator" / "build-requirements.lock"
NEEDS = [images.need_command("debootstrap", "debootstrap")]


def progress(message: str) -> None:
    """A step a new user may wait minutes for, so that it does not look hung."""
    print(f"[operator image {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def debian_mirror() -> str:
    """The main archive this machine's apt uses (deb822 or one-line format), not -security."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in [*sources, Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        for uri in re.findall(
            r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", path.read_text(), re.MULTILINE
        ):
            if "security" not in uri:
                return str(uri)
    raise images.BuildError("no Debian archive in /etc/apt/sources.list(.d)")


def base_rootfs(cache: Path) -> Path:
    """Debian minbase with python3, made once and kept."""
    target = cache / "rootfs" / f"{SUITE}-python3"
    if (target / ".done").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"debootstrap: Debian {SUITE} minbase with python3, once (about 2 minutes)")
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3",
            SUITE,
            str(target),
            debian_mirror(),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for cache_dir in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(target / cache_dir, ignore_errors=True)
    (target / ".done").write_text("ok\n")
    return target


def source_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{images.REGISTRY}/{images.TAG}".encode())  # the name is in the archive
    files = [ROOT / "pyproject.toml", LOCK, BUILD_LOCK, *sorted((ROOT / "operator").rglob("*.py"))]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[: images.KEY_LENGTH]


def install_project(rootfs: Path) -> None:
    """The dependencies' wheels for CPython 3.11 on x86-64 glibc, exactly as LOCK pins them and
    checked against its sha256 hashes, then the project's own wheel, built by the backend that
    BUILD_LOCK pins and hashes: the Dockerfile's steps."""
    progress("the project's wheel and its dependencies' wheels (under a minute)")
    target = [
        "--no-compile",
        "--no-warn-conflicts",
        "--no-deps",
        "--target",
        str(rootfs / SITE.lstrip("/")),
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "manylinux_2_17_x86_64",
        "--platform",
        "linux_x86_64",
    ]
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as wheels, tempfile.TemporaryDirectory() as backend:
        # The build backend comes from its own hashed lock: pip's build isolation would fetch
        # whatever hatchling is newest.
        backend_only = ["--no-deps", "--only-binary=:all:", "--target", backend]
        subprocess.run(
            [*pip, "install", "-q", *backend_only, "--require-hashes", "-r", str(BUILD_LOCK)],
            check=True,
        )
        subprocess.run(
            [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, str(ROOT)],
            check=True,
            env={**os.environ, "PYTHONPATH": backend},
        )
        [wheel] = Path(wheels).glob("*.whl")
        # --no-deps: nothing outside the lock is resolved; a dependency missing from the lock
        # fails tests/deploy/test_lock.py, not this build.
        subprocess.run(
            [*pip, "install", "-q", *target, "--require-hashes", "-r", str(LOCK)], check=True
        )
        # --upgrade only because the first install made bin/ (console scripts, unused: the
        # entrypoint is `python3 -m tandem`); without it pip skips the wheel's bin/ with a warning.
        subprocess.run([*pip, "install", "-q", *target, "--upgrade", str(wheel)], check=True)
    with (rootfs / "etc" / "passwd").open("a") as passwd:
        passwd.write(f"tandem:x:{USER}:{USER}::/nonexistent:/usr/sbin/nologin\n")
    with (rootfs / "etc" / "group").open("a") as group:
        group.write(f"tandem:x:{USER}:\n")


def layer_of(rootfs: Path) -> bytes:
    """A reproducible tar of ROOTFS: sorted, owner root, no times; device nodes left out (the
    runtime provides /dev)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, dirs, files in os.walk(rootfs):
            if Path(directory) in {rootfs / "proc", rootfs / "sys", rootfs / "dev"}:
                dirs.clear()  # the runtime mounts these; keep the empty mount points
                continue
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = Path(directory) / name
                relative = str(path.relative_to(rootfs))
                info = path.lstat()
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISLNK(info.st_mode):
                    tar.addfile(
                        images.tar_member(
                            relative, tarfile.SYMTYPE, 0o777, target=os.readlink(path)
                        )
                    )
                elif stat.S_ISDIR(info.st_mode):
                    tar.addfile(images.tar_member(relative, tarfile.DIRTYPE, mode))
                elif stat.S_ISREG(info.st_mode):
                    member = images.tar_member(relative, tarfile.REGTYPE, mode, size=info.st_size)
                    with path.open("rb") as content:
                        tar.addfile(member, content)
    return buffer.getvalue()


def build(out: Path, cache: Path) -> tuple[Path, bool]:
    image = images.Image(
        "tandem/operator",
        (),
        entrypoint=["python3", "-m", "tandem"],
        cmd=["run"],
        env=(f"PYTHONPATH={SITE}", "PYTHONDONTWRITEBYTECODE=1"),
        user=f"{USER}:{USER}",
    )
    target = out / f"{image.stem}-{source_key()}.tar"
    if target.exists():
        return target, False
    images.check_host(NEEDS)
    base = base_rootfs(cache)
    with tempfile.TemporaryDirectory(prefix="tandem-operator-") as work:
        rootfs = Path(work) / "rootfs"
        shutil.copytree(
            base,
            rootfs,
            symlinks=True,
            ignore_dangling_symlinks=True,
            ignore=lambda d, names: [
                n
                for n in names
                if n == ".done" or (Path(d) == base and n in ("proc", "sys", "dev"))
            ],
        )
        for mount_point in ("proc", "sys", "dev"):
            (rootfs / mount_point).mkdir(exist_ok=True)
        install_project(rootfs)
        progress("packing the layer and the OCI archive")
        layer = layer_of(rootfs)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{target.name}.partial"
    images.write_archive(partial, images.oci_blobs(image, layer))
    partial.replace(target)
    for stale in out.glob(f"{image.stem}-{'?' * images.KEY_LENGTH}.tar"):
        if stale != target:
            stale.unlink()
    return target, True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/var/cache/tandem/images"))
    parser.add_argument("--cache", type=Path, default=Path("/var/cache/tandem"))
    parser.add_argument("--import", dest="do_import", action="store_true")
    parser.add_argument("--address", default="")
    args = parser.parse_args(argv)
    try:
        tarball, built = build(args.out, args.cache)
        imported = args.do_import and images.import_image("ctr", args.address, "k8s.io", tarball)
    except images.BuildError as err:
        print(f"operator_image: {err}", file=sys.stderr)
        return 1
    size = tarball.stat().st_size // (1 << 20)
    state = ("built" if built else "cached") + ("+imported" if imported else "")
    print(f"{images.REGISTRY}/tandem/operator:{images.TAG}  {state}  {size} MiB  {tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
