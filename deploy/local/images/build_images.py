#!/usr/bin/env python3
"""Builds Tandem's local container images as OCI image-layout tarballs, and imports them.

The local cluster has no registry: images are tarballs imported straight into containerd's
k8s.io namespace, and pods use them with `imagePullPolicy: Never`. Every input comes from Debian
packages already on the machine (busybox-static, haproxy, gcc and libc6-dev), so nothing is
pulled from anywhere.

Each tarball is named by a short sha256 of its inputs (this script, the C sources, the host files
it copies and the compiler's version), so a second run with unchanged inputs builds nothing.
Layers are written deterministically (sorted entries, mtime 0, uid/gid 0), so the same inputs
give the same digests.

Images, all `local.invalid/tandem/NAME:local`:
  pause      static C PID 1 for pod sandboxes: reaps children, exits 0 on TERM and INT.
  busybox    static busybox with every applet linked in /bin, /etc/passwd (root, nobody), cmd sh.
  shellless  one static binary, /sleeper, and nothing else: no shell, no kill (distroless-like).
  haproxy    Debian's haproxy and the libraries ldd lists, master-worker in the foreground.
  httpstop   static C HTTP server on 127.0.0.1 (POST /quitquitquit exits 0, TERM exits 143),
             plus busybox sh, wget and kill, so that a test can stop it by exec'ing wget into
             the container, the way a cloud-sql-proxy sidecar is stopped.

Usage:
  build_images.py [--out DIR] [IMAGE ...]
  build_images.py [--out DIR] --import --address SOCK [--namespace k8s.io] [IMAGE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = Path("/var/cache/tandem/images")
REGISTRY = "local.invalid"  # a reserved TLD (RFC 2606): no registry serves these names
TAG = "local"
KEY_LENGTH = 12
ENV_PATH = "PATH=/bin:/usr/bin:/usr/sbin:/sbin"
BUSYBOX = Path("/bin/busybox")
HAPROXY = Path("/usr/sbin/haproxy")
GCC_FLAGS = ["-static", "-O2", "-s", "-Wall", "-Wextra", "-Werror"]
# containerd 1.6.20's `ctr images import` accepts both tar and tar+gzip layers (both tested).
# Uncompressed keeps the layer digest equal to its diff_id; gzip would only save cache space.
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"

# No `user` directive (it runs as root inside its container, so it needs no /etc/passwd), no
# resolvers, no backends: it starts with loopback only and answers every request itself.
HAPROXY_CFG = b"""\
global
    maxconn 256

defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend local
    bind 127.0.0.1:8080
    http-request return status 200 content-type text/plain string ok
"""


class BuildError(Exception):
    """A problem the user can fix; reported as one message, without a traceback."""


# ---------------------------------------------------------------------------------------------
# What an image holds


@dataclass(frozen=True)
class HostFile:
    """A file copied from the host (symlinks resolved); its bytes are an input of the image."""

    path: Path


@dataclass(frozen=True)
class CProgram:
    """A C source next to this script, compiled static; the source is the input, not the binary."""

    source: str


Content: TypeAlias = bytes | HostFile | CProgram


@dataclass(frozen=True)
class Entry:
    """One path in the image: a regular file (content), a symlink (link) or else a directory."""

    path: str
    mode: int = 0o755
    content: Content | None = None
    link: str | None = None


@dataclass(frozen=True)
class Image:
    """An image's single layer and the config that says how to start it."""

    name: str
    entries: tuple[Entry, ...]
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: tuple[str, ...] = ()
    """Set in the image besides PATH."""
    user: str | None = None

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/{self.name}:{TAG}"

    @property
    def stem(self) -> str:
        return self.name.replace("/", "-")


def file(path: str, content: Content, mode: int = 0o755) -> Entry:
    return Entry(path, mode, content=content)


def link(path: str, target: str) -> Entry:
    return Entry(path, 0o777, link=target)


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, mode)


# ---------------------------------------------------------------------------------------------
# Host inputs


@dataclass(frozen=True)
class Need:
    """A host input and the Debian package that provides it, checked before anything runs."""

    what: str
    package: str
    present: Callable[[], bool]


def need_executable(path: Path, package: str) -> Need:
    return Need(str(path), package, lambda: os.access(path, os.X_OK))


def need_command(command: str, package: str) -> Need:
    return Need(command, package, lambda: shutil.which(command) is not None)


def is_static_elf(path: Path) -> bool:
    """True if the 64-bit ELF file has no program interpreter, so it runs in an empty image.

    Debian's `busybox` package also installs /bin/busybox, but dynamically linked; only
    `busybox-static` works alone in an image, and a wrong one would fail only at run time.
    """
    data = path.read_bytes()
    if data[:5] != b"\x7fELF\x02":
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    pt_interp = 3
    return all(
        struct.unpack_from("<I", data, phoff + i * phentsize)[0] != pt_interp for i in range(phnum)
    )


def libc_static_present() -> bool:
    """gcc prints an absolute path only when it finds libc.a (from libc6-dev)."""
    if shutil.which("gcc") is None:
        return False
    return os.path.isabs(run(["gcc", "-print-file-name=libc.a"]).strip())


NEED_GCC = (need_command("gcc", "gcc"), Need("libc.a", "libc6-dev", libc_static_present))
NEED_BUSYBOX = Need(
    f"static {BUSYBOX}", "busybox-static", lambda: BUSYBOX.is_file() and is_static_elf(BUSYBOX)
)
NEED_HAPROXY = (need_executable(HAPROXY, "haproxy"), need_command("ldd", "libc-bin"))


def check_host(needs: list[Need]) -> None:
    """Fails with every missing input and the Debian packages that provide them, at once."""
    missing = [need for need in dict.fromkeys(needs) if not need.present()]
    if missing:
        what = ", ".join(f"{n.what} (Debian package {n.package})" for n in missing)
        packages = " ".join(sorted({n.package for n in missing}))
        raise BuildError(f"missing host inputs: {what}; install with: apt-get install {packages}")


def run(cmd: list[str]) -> str:
    """Runs cmd and returns its stdout; a failure becomes a BuildError carrying its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise BuildError(f"{' '.join(cmd)} exited {proc.returncode}: {output}")
    return proc.stdout


def busybox_applets() -> list[str]:
    """Applet names from the host's busybox itself, so the links match the binary we copy."""
    return sorted(set(run([str(BUSYBOX), "--list"]).split()) - {"busybox"})


def shared_libraries(binary: Path) -> list[str]:
    """Paths of the libraries and the loader that ldd says binary maps, vdso excluded."""
    paths = []
    for line in run(["ldd", str(binary)]).splitlines():
        if "not found" in line:
            raise BuildError(f"ldd {binary}: {line.strip()}")
        words = line.split()
        path = words[words.index("=>") + 1] if "=>" in words else words[0]
        if path.startswith("/"):
            paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# The images


def busybox_links(applets: list[str]) -> list[Entry]:
    return [
        file("/bin/busybox", HostFile(BUSYBOX)),
        *(link(f"/bin/{applet}", "busybox") for applet in applets),
    ]


def pause_image() -> Image:
    return Image("tandem/pause", (file("/pause", CProgram("pause.c")),), entrypoint=["/pause"])


def busybox_image() -> Image:
    entries = [
        *busybox_links(busybox_applets()),
        file("/etc/passwd", PASSWD, 0o644),
        file("/etc/group", GROUP, 0o644),
        directory("/root", 0o700),
        directory("/tmp", 0o1777),
    ]
    return Image("tandem/busybox", tuple(entries), cmd=["sh"])


def shellless_image() -> Image:
    return Image(
        "tandem/shellless", (file("/sleeper", CProgram("sleeper.c")),), entrypoint=["/sleeper"]
    )


def haproxy_image() -> Image:
    """Debian's haproxy, run as `-W -db`: a master process in the foreground with one worker.

    Signals to the master (PID 1), measured with Debian's haproxy 2.6.12 under containerd 1.6.20
    (`ctr task kill -s SIG`); the master forwards each to the worker:
      SIGUSR1  soft stop: the worker stops listening, finishes its connections and exits 0; the
               master then exits 0. The documented clean stop (the official image's STOPSIGNAL).
      SIGTERM  hard stop: the worker exits 143 at once, yet the master logs "All workers exited.
               Exiting... (0)" and exits 0. So the kubelet's TERM also gives exit code 0.
      SIGINT   hard stop, but the master exits 130.
      SIGQUIT  does not stop it (haproxy dumps its memory pools).
    Like the official Debian-based haproxy image, it has a shell (busybox sh and kill here).
    """
    libraries = [file(path, HostFile(Path(path))) for path in shared_libraries(HAPROXY)]
    entries = [
        file(str(HAPROXY), HostFile(HAPROXY)),
        *libraries,
        file("/etc/haproxy/haproxy.cfg", HAPROXY_CFG, 0o644),
        *busybox_links(["kill", "sh", "sleep", "wget"]),
        directory("/tmp", 0o1777),
        directory("/run"),
    ]
    return Image(
        "tandem/haproxy",
        tuple(entries),
        entrypoint=[str(HAPROXY), "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
    )


def httpstop_image() -> Image:
    """httpstop has no shell of its own; busybox sh, wget and kill let tests exec into it."""
    entries = [file("/httpstop", CProgram("httpstop.c")), *busybox_links(["kill", "sh", "wget"])]
    return Image("tandem/httpstop", tuple(entries), entrypoint=["/httpstop"])


@dataclass(frozen=True)
class Recipe:
    """How to make one image, and what the host must have before that is even attempted."""

    make: Callable[[], Image]
    needs: tuple[Need, ...]


RECIPES: dict[str, Recipe] = {
    "pause": Recipe(pause_image, NEED_GCC),
    "busybox": Recipe(busybox_image, (NEED_BUSYBOX,)),
    "shellless": Recipe(shellless_image, NEED_GCC),
    "haproxy": Recipe(haproxy_image, (*NEED_HAPROXY, NEED_BUSYBOX)),
    "httpstop": Recipe(httpstop_image, (*NEED_GCC, NEED_BUSYBOX)),
}


# ---------------------------------------------------------------------------------------------
# Input hash


def content_key(content: Content | None) -> str:
    """What a file's bytes depend on: its bytes, or for a C program, its source."""
    if content is None:
        return "-"
    if isinstance(content, bytes):
        return "bytes:" + sha256(content)
    if isinstance(content, HostFile):
        return "host:" + sha256(content.path.read_bytes())
    return "c:" + sha256((HERE / content.source).read_bytes())


def input_key(image: Image) -> str:
    """Short sha256 of everything the tarball depends on; it names the cached tarball."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    if any(isinstance(e.content, CProgram) for e in image.entries):
        h.update(run(["gcc", "--version"]).encode())
    for entry in sorted(image.entries, key=lambda e: e.path):
        fields = [entry.path, oct(entry.mode), entry.link or "", content_key(entry.content)]
        h.update(("\0".join(fields) + "\n").encode())
    return h.hexdigest()[:KEY_LENGTH]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# Tar and OCI layout


def tar_member(
    name: str, kind: bytes, mode: int, size: int = 0, target: str = ""
) -> tarfile.TarInfo:
    """A header with nothing taken from the host (owner, time), so layers are reproducible."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, target
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def parent_dirs(paths: list[str]) -> set[str]:
    """Every directory above the given paths, so that no layer relies on implicit parents."""
    parents: set[str] = set()
    for path in paths:
        parts = path.strip("/").split("/")[:-1]
        parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return parents


def file_bytes(content: Content, workdir: Path) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, HostFile):
        return content.path.read_bytes()
    binary = workdir / Path(content.source).stem
    run(["gcc", *GCC_FLAGS, "-o", str(binary), str(HERE / content.source)])
    return binary.read_bytes()


def layer_tar(image: Image, workdir: Path) -> bytes:
    """The image's only layer: an uncompressed tar, entries sorted, parents before children."""
    entries = {e.path.strip("/"): e for e in image.entries}
    for parent in parent_dirs(list(entries)) - set(entries):
        entries[parent] = directory(parent)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            entry = entries[name]
            if entry.link is not None:
                tar.addfile(tar_member(name, tarfile.SYMTYPE, entry.mode, target=entry.link))
            elif entry.content is None:
                tar.addfile(tar_member(name, tarfile.DIRTYPE, entry.mode))
            else:
                data = file_bytes(entry.content, workdir)
                info = tar_member(name, tarfile.REGTYPE, entry.mode, size=len(data))
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": "sha256:" + sha256(blob), "size": len(blob)}


def oci_blobs(image: Image, layer: bytes) -> dict[str, bytes]:
    """The files of an OCI image layout holding image: oci-layout, index.json and the blobs."""
    arch = OCI_ARCH[platform.machine()]
    runtime: dict[str, object] = {"Env": [ENV_PATH, *image.env], "WorkingDir": "/"}
    if image.user is not None:
        runtime["User"] = image.user
    if image.entrypoint is not None:
        runtime["Entrypoint"] = image.entrypoint
    if image.cmd is not None:
        runtime["Cmd"] = image.cmd
    config = canonical_json(
        {
            "architecture": arch,
            "os": "linux",
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256(layer)]},
            "history": [{"created_by": "deploy/local/images/build_images.py"}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor(LAYER_MEDIA_TYPE, layer)],
        }
    )
    entry = descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
    entry["platform"] = {"architecture": arch, "os": "linux"}
    entry["annotations"] = {
        "io.containerd.image.name": image.ref,
        "org.opencontainers.image.ref.name": TAG,
    }
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry],
        }
    )
    files = {"oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}), "index.json": index}
    files.update({f"blobs/sha256/{sha256(blob)}": blob for blob in (layer, config, manifest)})
    return files


def write_archive(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs", "blobs/sha256"):
            tar.addfile(tar_member(name, tarfile.DIRTYPE, 0o755))
        for name in sorted(files):
            info = tar_member(name, tarfile.REGTYPE, 0o644, size=len(files[name]))
            tar.addfile(info, io.BytesIO(files[name]))


# ---------------------------------------------------------------------------------------------
# Build, cache, import


def build(image: Image, out: Path) -> tuple[Path, bool]:
    """Returns the image's tarball, and whether it had to be built (False: it was cached)."""
    target = out / f"{image.stem}-{input_key(image)}.tar"
    if target.exists():
        return target, False
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tandem-images-") as workdir:
        layer = layer_tar(image, Path(workdir))
    partial = out / f".{target.name}.{os.getpid()}.partial"
    try:
        write_archive(partial, oci_blobs(image, layer))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    for stale in out.glob(f"{image.stem}-{'?' * KEY_LENGTH}.tar"):
        if stale != target:
            stale.unlink()
    return target, True


def archive_image(tarball: Path) -> tuple[str, str]:
    """The name and manifest digest that the archive's index.json gives its one image."""
    with tarfile.open(tarball) as archive:
        index = archive.extractfile("index.json")
        if index is None:
            raise BuildError(f"{tarball}: no index.json")
        [manifest] = json.load(index)["manifests"]
    return manifest["annotations"]["io.containerd.image.name"], manifest["digest"]


def import_image(ctr: str, address: str, namespace: str, tarball: Path) -> bool:
    """Imports without --no-unpack: the snapshot CRI starts containers from is made right away.
    False if containerd already holds the image under its name with the same digest: the
    operator's 262 MiB import takes 5-9 s, and every deploy of a test session asks for it.

    The image keeps the name in its io.containerd.image.name annotation, so no --base-name.
    """
    if not Path(address).is_socket():
        raise BuildError(f"no containerd socket at {address}")
    ctr_ns = [ctr, "--address", address, "--namespace", namespace]
    name, digest = archive_image(tarball)
    held = run([*ctr_ns, "images", "ls", f"name=={name}"]).split()
    if digest in held:
        return False
    run([*ctr_ns, "images", "import", str(tarball)])
    return True


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help=f"images to build (default: all of {', '.join(RECIPES)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"tarball cache directory (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--import",
        dest="do_import",
        action="store_true",
        help="import the tarballs into containerd with ctr",
    )
    parser.add_argument("--address", help="containerd socket (required with --import)")
    parser.add_argument("--namespace", default="k8s.io", help="containerd namespace (k8s.io)")
    parser.add_argument("--ctr", default="ctr", help="ctr binary (default: ctr)")
    args = parser.parse_args(argv)
    if args.do_import and not args.address:
        parser.error("--import needs --address SOCK")
    unknown = sorted(set(args.images) - set(RECIPES))
    if unknown:
        parser.error(f"unknown images {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = args.images or list(RECIPES)
    needs = [need for name in names for need in RECIPES[name].needs]
    if args.do_import:
        needs.append(need_command(args.ctr, "containerd"))
    try:
        check_host(needs)
        for name in names:
            start = time.monotonic()
            image = RECIPES[name].make()
            tarball, built = build(image, args.out)
            imported = args.do_import and import_image(
                args.ctr, args.address, args.namespace, tarball
            )
            status = ("built" if built else "cached") + ("+imported" if imported else "")
            size = tarball.stat().st_size // 1024
            print(
                f"{image.ref:<34} {status:<15} {size:>6} KiB {time.monotonic() - start:5.1f}s"
                f"  {tarball}",
                flush=True,
            )
    except (BuildError, OSError) as err:
        print(f"build_images: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
