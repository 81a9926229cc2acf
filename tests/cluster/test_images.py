"""Images reach the node's containerd once: an archive whose image containerd already holds under
its name, with the same digest, is not imported again (every deploy of a test session asks for
the operator's 262 MiB image); a changed image under that name is."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import build_images as images  # deploy/local/images, on pytest's pythonpath
from localcluster import Layout


def test_an_image_held_with_the_same_digest_is_not_imported_again(
    local_cluster: Layout, tmp_path: Path
) -> None:
    name = f"tandem/import-check-{secrets.token_hex(3)}"
    address = str(local_cluster.containerd_socket)
    ctr = ["ctr", "--address", address, "--namespace", "k8s.io", "images"]

    def archive(content: bytes, out: Path) -> tuple[Path, str]:
        tarball, _ = images.build(images.Image(name, (images.file("/f", content, 0o644),)), out)
        return tarball, images.archive_image(tarball)[1]

    def held() -> str:
        return subprocess.run(
            [*ctr, "ls", f"name=={images.REGISTRY}/{name}:{images.TAG}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    first, first_digest = archive(b"one\n", tmp_path / "one")
    second, second_digest = archive(b"two\n", tmp_path / "two")
    assert first_digest != second_digest
    try:
        assert images.import_image("ctr", address, "k8s.io", first) is True
        assert first_digest in held()
        assert images.import_image("ctr", address, "k8s.io", first) is False
        # The positive control: another image under the same name is imported, and replaces it.
        assert images.import_image("ctr", address, "k8s.io", second) is True
        assert second_digest in held() and first_digest not in held()
    finally:
        subprocess.run([*ctr, "rm", f"{images.REGISTRY}/{name}:{images.TAG}"], check=False)
