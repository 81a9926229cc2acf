"""Renders deploy/helm/tandem with the helm that deploy/local/build.sh builds, and
deploy/base with `kubectl kustomize`: both offline, as parsed objects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster import Layout

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "deploy" / "helm" / "tandem"
Obj = dict[str, Any]


def helm_bin() -> Path:
    """The helm binary, or a skip that says how to get it."""
    helm = Layout().helm_bin
    if not helm.is_file():
        pytest.skip(
            f"no helm at {helm}: `bash deploy/local/build.sh` builds it (tests/run.sh does)"
        )
    return helm


def kubectl_bin() -> Path:
    kubectl = Layout().kubectl
    if not kubectl.is_file():
        pytest.skip(f"no kubectl at {kubectl}: `bash deploy/local/build.sh` builds it")
    return kubectl


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(helm_bin()), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def set_args(values: dict[str, Any]) -> list[str]:
    """--set-json per top-level value, so lists and empty strings arrive as they are."""
    return [
        a for key, value in values.items() for a in ("--set-json", f"{key}={json.dumps(value)}")
    ]


LOCAL = {"localCluster": True}
"""What the project's own installs set: the local.invalid placeholder images are allowed."""


def render_text(values: dict[str, Any] | None = None, crds: bool = True, local: bool = True) -> str:
    """The chart rendered with VALUES; LOCAL adds localCluster: true (the placeholder image)."""
    args = [
        "template",
        "tandem",
        str(CHART),
        *set_args({**(LOCAL if local else {}), **(values or {})}),
    ]
    return helm(*args, *(["--include-crds"] if crds else [])).stdout


def parse(text: str) -> list[Obj]:
    return [o for o in yaml.safe_load_all(text) if o]


def render(
    values: dict[str, Any] | None = None, crds: bool = True, local: bool = True
) -> list[Obj]:
    return parse(render_text(values, crds, local))


def kustomize(path: Path) -> list[Obj]:
    done = subprocess.run(
        [str(kubectl_bin()), "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return parse(done.stdout)


def key(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def by_key(objs: list[Obj]) -> dict[tuple[str, str, str, str], Obj]:
    keyed = {key(o): o for o in objs}
    assert len(keyed) == len(objs), "two objects with one name"
    return keyed


def the(objs: list[Obj], kind: str, name: str = "tandem", namespace: str = "") -> Obj:
    [found] = [
        o
        for o in objs
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and o["metadata"].get("namespace", "") == namespace
    ]
    return found


def container(objs: list[Obj], namespace: str = "tandem-system") -> Obj:
    deployment = the(objs, "Deployment", namespace=namespace)
    [operator] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def args(objs: list[Obj], namespace: str = "tandem-system") -> list[str]:
    return list(container(objs, namespace)["args"])


def rules(objs: list[Obj]) -> list[tuple[str, str, str, Obj]]:
    """Every rule of every Role and ClusterRole, with the role's kind, namespace and name."""
    return [
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"], rule)
        for o in objs
        if o["kind"] in ("Role", "ClusterRole")
        for rule in o.get("rules", [])
    ]


def grants(objs: list[Obj], verb: str, resource: str, group: str = "") -> list[tuple[str, str]]:
    """(role kind, namespace) of each role that grants VERB on RESOURCE."""
    return [
        (kind, namespace)
        for kind, namespace, _, rule in rules(objs)
        if verb in rule["verbs"] and resource in rule["resources"] and group in rule["apiGroups"]
    ]
