"""The Helm chart in deploy/helm/tandem, offline: it lints, its defaults render what
deploy/base renders, and each value does what values.yaml says. No cluster needed
(tests/incluster/test_helm_dry_run.py sends the renders to the API server)."""

from __future__ import annotations

import copy
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from .chart import (
    CHART,
    LOCAL,
    ROOT,
    Obj,
    args,
    by_key,
    container,
    grants,
    helm,
    helm_bin,
    kustomize,
    parse,
    render,
    rules,
    set_args,
    the,
)

VARIANTS: list[dict[str, Any]] = [
    {},
    {"watchNamespaces": ["jobs", "batch"]},
    {"watchNamespaces": ["jobs"], "sweeper": {"action": "Delete"}, "replicas": 1},
    {"sweeper": {"action": "Delete"}},
    {"sweeper": {"action": "Report"}, "helperImage": ""},
    {"exec": {"enabled": True}},
    {"exec": {"enabled": True}, "helperImage": "local.invalid/tandem/busybox:local"},
    {"exec": {"enabled": True, "namespaceOptIn": False}, "helperImage": "registry.example/h:1"},
    {"replicas": 1, "metrics": {"enabled": False}},
    {"metrics": {"port": 9191, "service": {"enabled": True}}},
    {"namespace": {"name": "ops", "create": False}, "image": {"tag": "0.1.0"}},
    {"image": {"repository": "registry.example/tandem", "digest": "sha256:" + "ab" * 32}},
    {"exec": {"enabled": False}},
    {"exec": {"enabled": True}, "watchNamespaces": ["jobs"]},
]
HELM_LABELS = ("app.kubernetes.io/instance", "app.kubernetes.io/managed-by")
# kustomize gives every kind it does not know a namespace, the cluster-scoped ClusterKopfPeering
# too (the API server ignores it there); Helm does not.
# Kinds kustomize does not know to be cluster-scoped, so it gives them the base's namespace (the
# API server ignores it).
CLUSTER_SCOPED = {
    "ClusterKopfPeering",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    helm_bin()


@pytest.mark.parametrize("values", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
def test_the_chart_lints_strictly(values: dict[str, Any], tmp_path: Path) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump({**LOCAL, **values}))
    done = helm("lint", "--strict", str(CHART), "-f", str(file))
    assert "0 chart(s) failed" in done.stdout, done.stdout


def test_the_schema_rejects_a_sweep_action_the_operator_does_not_know() -> None:
    done = helm("template", "tandem", str(CHART), "--set", "sweeper.action=Kill", check=False)
    assert done.returncode != 0
    assert "sweeper" in done.stderr


def _comparable(obj: Obj) -> Obj:
    """An object without what only one of the two tools adds: labels (kustomize's commonLabels,
    Helm's release labels). Pod Security labels stay, they are part of what is deployed."""
    obj = copy.deepcopy(obj)
    if obj["kind"] in CLUSTER_SCOPED:
        obj["metadata"].pop("namespace", None)
    labels = obj["metadata"].pop("labels", {})
    kept = {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}
    if kept:
        obj["metadata"]["labels"] = kept
    if obj["kind"] == "Deployment":
        template = obj["spec"]["template"]["metadata"]
        selector = obj["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["labels"].items(), "the selector must match its pods"
        template.pop("labels")
    return obj


def test_the_defaults_render_what_the_kustomize_base_renders() -> None:
    base = by_key([_comparable(o) for o in kustomize(ROOT / "deploy" / "base")])
    chart = by_key([_comparable(o) for o in render()])
    assert sorted(chart) == sorted(base)
    for k in base:
        assert chart[k] == base[k], k


def test_every_object_carries_the_base_labels() -> None:
    for obj in render(crds=False):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "tandem", obj["kind"]
        assert labels["app.kubernetes.io/part-of"] == "tandem", obj["kind"]
        assert all(k in labels for k in HELM_LABELS), obj["kind"]


def _comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("# ")]


def test_the_rbac_rules_keep_their_reasons() -> None:
    reasons = _comments((ROOT / "deploy" / "base" / "rbac.yaml").read_text())
    # The chart names the value that adds exec, where the base names the component.
    reworded = {
        "# exec: this install finishes pods by their phase only (--no-exec). "
        "deploy/components/exec adds": "# exec: this install finishes pods by their phase only "
        "(--no-exec). exec.enabled adds",
    }
    rendered = helm(
        "template", "tandem", str(CHART), "--set", "localCluster=true",
        "--show-only", "templates/rbac.yaml",
    ).stdout  # fmt: skip
    assert [reworded.get(r, r) for r in reasons] == [
        c for c in _comments(rendered) if not c.startswith(("# Source:", "# Cluster-wide"))
    ]


def _peering_flag(objs: list[Obj]) -> str:
    [deployment] = [o for o in objs if o["kind"] == "Deployment"]
    [flag] = [a for a in args(objs, deployment["metadata"]["namespace"]) if "--peering=" in a]
    return flag.removeprefix("--peering=")


def test_the_namespaced_overlay_and_the_chart_pass_the_same_flags() -> None:
    overlay = kustomize(ROOT / "deploy" / "overlays" / "namespaced")
    chart = render({"watchNamespaces": ["jobs"]})
    # Only the peering's name differs: the chart names it after the release's namespace, so that
    # several namespaced releases never meet in one peering; the overlay keeps the base's.
    assert (_peering_flag(overlay), _peering_flag(chart)) == ("tandem", "tandem-tandem-system")
    without_peering = [a for a in args(chart) if not a.startswith("--peering=")]
    assert without_peering == [a for a in args(overlay) if not a.startswith("--peering=")]


PEERING_RULES = [
    {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list", "watch"]},
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings"],
        "resourceNames": ["NAME"],
        "verbs": ["get", "patch"],
    },
]


def peering_rules(name: str) -> list[Obj]:
    return [{**r, "resourceNames": [name]} if "resourceNames" in r else r for r in PEERING_RULES]


INSTALLS = {
    "base": lambda: kustomize(ROOT / "deploy" / "base"),
    "namespaced overlay": lambda: kustomize(ROOT / "deploy" / "overlays" / "namespaced"),
    "chart": lambda: render(crds=False),
    "chart, namespaced": lambda: render({"watchNamespaces": ["jobs", "batch"]}, crds=False),
    "chart, namespaced in ops": lambda: render(
        {"watchNamespaces": ["jobs"], "namespace": {"name": "ops"}}, crds=False
    ),
}


@pytest.mark.parametrize("install", INSTALLS)
def test_the_replicas_meet_in_a_cluster_kopf_peering_outside_every_watched_namespace(
    install: str,
) -> None:
    """A KopfPeering would live in a watched namespace, where its users could edit it and pause
    Tandem with a fake peer of higher priority: every install meets in a ClusterKopfPeering."""
    objs = [o for o in INSTALLS[install]() if o["kind"] != "CustomResourceDefinition"]
    assert not any(o["kind"] == "KopfPeering" for o in objs)
    assert grants(objs, "patch", "kopfpeerings", "kopf.dev") == []
    name = _peering_flag(objs)
    peerings = [o["metadata"]["name"] for o in objs if o["kind"] == "ClusterKopfPeering"]
    assert peerings == [name]
    # Its own ClusterRole, bound cluster-wide: lists and watches the peerings, writes only its own.
    peering_roles = [
        o for o in objs if o["kind"] == "ClusterRole" and o["rules"] == peering_rules(name)
    ]
    assert len(peering_roles) == 1, [
        o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRole"
    ]
    [role] = peering_roles
    binding = the(objs, "ClusterRoleBinding", role["metadata"]["name"])
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == ["tandem"]
    assert [r for *_, r in rules(objs) if "kopf.dev" in r["apiGroups"]] == peering_rules(name)


def test_namespaced_releases_in_two_namespaces_meet_in_two_peerings() -> None:
    one = render({"watchNamespaces": ["jobs"]}, crds=False)
    two = render({"watchNamespaces": ["batch"], "namespace": {"name": "ops"}}, crds=False)
    assert _peering_flag(one) != _peering_flag(two)
    cluster_scoped = {"ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding"}
    names = [
        {(o["kind"], o["metadata"]["name"]) for o in r if o["kind"] in cluster_scoped}
        for r in (one, two)
    ]
    assert names[0] & names[1] == set(), "two releases would fight over one cluster-scoped object"


def test_a_namespaced_scope_grants_only_inside_the_listed_namespaces() -> None:
    objs = render({"watchNamespaces": ["jobs", "batch"]}, crds=False)
    # The one cluster-wide grant: the release's own ClusterKopfPeering. No nodes.
    cluster_rules = [r for o in objs if o["kind"] == "ClusterRole" for r in o["rules"]]
    assert cluster_rules == peering_rules("tandem-tandem-system")
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs if o["kind"] == "Role"
    }
    assert roles == {("jobs", "tandem"), ("batch", "tandem")}
    for verb in ("get", "list", "watch"):
        assert sorted(grants(objs, verb, "pods")) == [("Role", "batch"), ("Role", "jobs")]
    for ns in ("jobs", "batch"):
        binding = the(objs, "RoleBinding", namespace=ns)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "tandem",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "tandem", "namespace": "tandem-system"}
        ]
        # Nothing of the peering in a watched namespace: its users could edit it.
        assert not [
            o for o in objs if o["metadata"].get("namespace") == ns and "Peering" in o["kind"]
        ]
    assert [a for a in args(objs) if a.startswith("--namespace=")] == [
        "--namespace=jobs",
        "--namespace=batch",
    ]


@pytest.mark.parametrize("scope", [[], ["jobs"]], ids=["cluster", "namespaced"])
def test_the_delete_sweep_adds_delete_on_pods_and_its_flag(scope: list[str]) -> None:
    objs = render({"watchNamespaces": scope, "sweeper": {"action": "Delete"}}, crds=False)
    kind = "Role" if scope else "ClusterRole"
    namespace = scope[0] if scope else ""
    assert grants(objs, "delete", "pods") == [(kind, namespace)]
    binding = the(objs, kind + "Binding", "tandem-sweeper-delete", namespace)
    assert binding["roleRef"]["name"] == "tandem-sweeper-delete"
    assert binding["subjects"][0]["name"] == "tandem"
    assert args(objs)[-2:] == ["--sweep-action=Delete", "--sweep-allow-delete"]


def test_the_cluster_wide_delete_rbac_is_the_base_file() -> None:
    file = ROOT / "deploy" / "base" / "rbac-sweeper-delete.yaml"
    base = by_key([_comparable(o) for o in parse(file.read_text())])
    objs = render({"sweeper": {"action": "Delete"}}, crds=False)
    chart = by_key(
        [_comparable(o) for o in objs if o["metadata"]["name"] == "tandem-sweeper-delete"]
    )
    assert chart == base


def test_the_namespaced_overlays_delete_rbac_is_the_charts_and_stays_in_its_namespace() -> None:
    file = ROOT / "deploy" / "overlays" / "namespaced" / "sweeper-delete.yaml"
    overlay = by_key([_comparable(o) for o in parse(file.read_text())])
    objs = render({"watchNamespaces": ["jobs"], "sweeper": {"action": "Delete"}}, crds=False)
    chart = by_key(
        [_comparable(o) for o in objs if o["metadata"]["name"] == "tandem-sweeper-delete"]
    )
    assert overlay == chart
    assert grants(list(overlay.values()), "delete", "pods") == [("Role", "jobs")]
    # Opt-in: the overlay as shipped grants no delete at all.
    assert grants(kustomize(ROOT / "deploy" / "overlays" / "namespaced"), "delete", "pods") == []


@pytest.mark.parametrize("action", ["Terminate", "Report"])
def test_other_sweeps_delete_nothing(action: str) -> None:
    objs = render({"sweeper": {"action": action}}, crds=False)
    assert grants(objs, "delete", "pods") == []
    assert "--sweep-allow-delete" not in args(objs)
    assert ("--sweep-action=Report" in args(objs)) == (action == "Report")
    assert not any(o["metadata"]["name"] == "tandem-sweeper-delete" for o in objs)


def test_without_a_helper_image_there_is_no_ephemeral_container_rule() -> None:
    objs = render({"helperImage": "", "exec": {"enabled": True}}, crds=False)
    assert not any("pods/ephemeralcontainers" in r["resources"] for *_, r in rules(objs))
    assert not any(a.startswith("--helper-image") for a in args(objs))
    values = {"helperImage": "registry.example/helper:1", "exec": {"enabled": True}}
    with_helper = render(values, crds=False)
    assert grants(with_helper, "patch", "pods/ephemeralcontainers") == [("ClusterRole", "")]
    assert "--helper-image=registry.example/helper:1" in args(with_helper)


@pytest.mark.parametrize("scope", [[], ["jobs"]])
def test_without_exec_there_is_no_exec_no_helper_and_the_flag(scope: list[str]) -> None:
    objs = render({"exec": {"enabled": False}, "watchNamespaces": scope}, crds=False)
    for resource in ("pods/exec", "pods/ephemeralcontainers"):
        assert not any(resource in r["resources"] for *_, r in rules(objs)), resource
    assert "--no-exec" in args(objs)
    assert not any(a.startswith("--helper-image") for a in args(objs))
    assert grants(objs, "patch", "pods/status")


def test_the_default_install_holds_no_exec() -> None:
    """Issue #25: `kubectl kustomize deploy/base` and `helm template` with the defaults (and only
    the local image allowed) grant no pods/exec and no pods/ephemeralcontainers in any Role or
    ClusterRole, and start the operator with --no-exec and no helper."""
    installs = {
        "base": kustomize(ROOT / "deploy" / "base"),
        "namespaced overlay": kustomize(ROOT / "deploy" / "overlays" / "namespaced"),
        "chart": render(crds=False),
        "chart, namespaced": render({"watchNamespaces": ["jobs"]}, crds=False),
        "chart, with a helper image": render({"helperImage": "registry.example/h:1"}),
    }
    for install, objs in installs.items():
        for _, _, name, rule in rules(objs):
            for resource in ("pods/exec", "pods/ephemeralcontainers", "pods/*", "*"):
                assert resource not in rule["resources"], (install, name, rule)
        assert "--no-exec" in args(objs), install
        assert not any(a.startswith("--helper-image") for a in args(objs)), install
        assert not _exec_opt_in(objs), install


def _comparable_all(objs: list[Obj]) -> dict[tuple[str, str, str, str], Obj]:
    return by_key([_comparable(o) for o in objs if o["kind"] != "CustomResourceDefinition"])


@pytest.mark.parametrize(
    ("overlay", "values"),
    [
        ("exec", {"exec": {"enabled": True}}),
        (
            "local",
            {
                "exec": {"enabled": True},
                "helperImage": "local.invalid/tandem/busybox:local",
                "image": {"pullPolicy": "Never"},
            },
        ),
    ],
)
def test_the_exec_overlays_render_what_the_chart_renders_with_exec(
    overlay: str, values: dict[str, Any]
) -> None:
    """One switch each: deploy/components/exec (and helper) and exec.enabled (and helperImage)
    give the same objects: pods/exec (and the helper's rule), no --no-exec, the admission
    policy for the same ServiceAccount."""
    kustomized = _comparable_all(kustomize(ROOT / "deploy" / "overlays" / overlay))
    chart = _comparable_all(render(values, crds=False))
    assert sorted(chart) == sorted(kustomized)
    for k in kustomized:
        assert chart[k] == kustomized[k], k
    assert "--no-exec" not in args(list(kustomized.values()))
    assert grants(list(kustomized.values()), "create", "pods/exec") == [("ClusterRole", "")]


def _policy_user(objs: list[Obj], name: str = "tandem-exec-opt-in") -> str:
    """The user name that the admission policy NAME restricts, read back from its CEL."""
    [policy] = [
        o
        for o in objs
        if o["kind"] == "ValidatingAdmissionPolicy" and o["metadata"]["name"] == name
    ]
    [condition] = policy["spec"]["matchConditions"]
    # The quoted strings 2, 4 and 8 (from 1): the ones kustomize's replacements write.
    parts = condition["expression"].split('"')
    assert parts[::2] == ["request.userInfo.username == ", " + ", " + ", " + ", ""], condition
    prefix, namespace, colon, name = parts[1::2]
    assert (prefix, colon) == ("system:serviceaccount:", ":"), condition
    return f"{prefix}{namespace}:{name}"


def _service_account_user(objs: list[Obj]) -> str:
    [account] = [o for o in objs if o["kind"] == "ServiceAccount"]
    [deployment] = [o for o in objs if o["kind"] == "Deployment"]
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
        == (account["metadata"]["name"])
    )
    meta = account["metadata"]
    return f"system:serviceaccount:{meta['namespace']}:{meta['name']}"


@pytest.mark.parametrize(
    "path", sorted(p.parent for p in (ROOT / "deploy" / "overlays").glob("*/kustomization.yaml"))
)
def test_every_overlays_exec_policy_keys_on_its_own_service_account(path: Path) -> None:
    objs = kustomize(path)
    if _exec_opt_in(objs):
        assert (
            _policy_user(objs)
            == _service_account_user(objs)
            == ("system:serviceaccount:tandem-system:tandem")
        )


def test_the_exec_component_follows_a_renamed_service_account(tmp_path: Path) -> None:
    """Renamed below the component (as its kustomization.yaml says), the policy follows: the
    component's replacements read the ServiceAccount itself, not a copy of its name."""
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "namespace": "ops",
                "namePrefix": "team-",
                "resources": [os.path.relpath(ROOT / "deploy" / "base", renamed)],
            }
        )
    )
    top = tmp_path / "exec"
    top.mkdir()
    (top / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["../renamed"],
                "components": [os.path.relpath(ROOT / "deploy" / "components" / "exec", top)],
            }
        )
    )
    objs = kustomize(top)
    assert (
        _policy_user(objs)
        == _service_account_user(objs)
        == ("system:serviceaccount:ops:team-tandem")
    )


def _exec_opt_in(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o["metadata"]["name"] == "tandem-exec-opt-in"]


def test_the_exec_opt_in_policy_is_the_overlays_for_the_releases_account() -> None:
    assert not _exec_opt_in(render(crds=False))
    objs = render({"exec": {"enabled": True}, "namespace": {"name": "ops"}}, crds=False)
    assert _policy_user(objs) == _service_account_user(objs) == "system:serviceaccount:ops:tandem"
    policy = the(objs, "ValidatingAdmissionPolicy", "tandem-exec-opt-in")
    binding = the(objs, "ValidatingAdmissionPolicyBinding", "tandem-exec-opt-in")
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    overlay = the(
        kustomize(ROOT / "deploy" / "overlays" / "exec"),
        "ValidatingAdmissionPolicy",
        "tandem-exec-opt-in",
    )
    [condition] = policy["spec"].pop("matchConditions")
    assert condition["expression"] == (
        'request.userInfo.username == "system:serviceaccount:" + "ops" + ":" + "tandem"'
    )
    overlay["spec"].pop("matchConditions")
    assert policy["spec"] == overlay["spec"]
    off = render({"exec": {"enabled": False, "namespaceOptIn": True}}, crds=False)
    assert not _exec_opt_in(off)
    everywhere = render({"exec": {"enabled": True, "namespaceOptIn": False}}, crds=False)
    assert not _exec_opt_in(everywhere)
    assert grants(everywhere, "create", "pods/exec") == [("ClusterRole", "")]


STATUS_WRITES = {
    **INSTALLS,
    **{
        f"overlay {p.parent.name}": lambda p=p: kustomize(p.parent)
        for p in (ROOT / "deploy" / "overlays").glob("*/kustomization.yaml")
    },
}


@pytest.mark.parametrize("install", sorted(STATUS_WRITES))
def test_every_install_guards_its_own_accounts_status_writes(install: str) -> None:
    """The guard is keyed on the ServiceAccount the Deployment runs as: keyed on another, it
    would guard nothing."""
    objs = STATUS_WRITES[install]()
    [policy] = [
        o["metadata"]["name"]
        for o in objs
        if o["kind"] == "ValidatingAdmissionPolicy" and "status-writes" in o["metadata"]["name"]
    ]
    assert _policy_user(objs, policy) == _service_account_user(objs)
    [binding] = [
        o
        for o in objs
        if o["kind"] == "ValidatingAdmissionPolicyBinding" and o["metadata"]["name"] == policy
    ]
    assert binding["spec"] == {"policyName": policy, "validationActions": ["Deny"]}


def test_the_status_writes_guard_is_the_base_file_and_can_be_turned_off() -> None:
    def spec(objs: list[Obj]) -> Obj:
        [policy] = [
            o
            for o in objs
            if o["kind"] == "ValidatingAdmissionPolicy"
            and o["metadata"]["name"].startswith("tandem-status-writes")
        ]
        return {k: v for k, v in policy["spec"].items() if k != "matchConditions"}

    base = parse((ROOT / "deploy" / "base" / "status-writes.yaml").read_text())
    assert spec(render(crds=False)) == spec(base)
    assert spec(render({"watchNamespaces": ["a"], "namespace": {"name": "ops"}}, crds=False)) == (
        spec(base)
    )
    link = CHART / "files" / "status-writes.yaml"
    assert (
        link.is_symlink() and link.resolve() == (ROOT / "deploy/base/status-writes.yaml").resolve()
    )
    off = render({"statusWrites": {"guard": False}}, crds=False)
    assert not [o for o in off if "status-writes" in o["metadata"]["name"]]
    assert [o for o in render(crds=False) if "status-writes" in o["metadata"]["name"]]  # control


def test_the_job_hazards_policy_is_the_base_file_and_can_be_turned_off() -> None:
    base = [
        _comparable(o) for o in parse((ROOT / "deploy" / "base" / "job-hazards.yaml").read_text())
    ]
    chart = [
        _comparable(o) for o in render(crds=False) if o["metadata"]["name"] == "tandem-job-hazards"
    ]
    assert sorted(chart, key=str) == sorted(base, key=str) and len(base) == 2
    link = CHART / "files" / "job-hazards.yaml"
    assert link.is_symlink() and link.resolve() == (ROOT / "deploy/base/job-hazards.yaml").resolve()
    off = render({"jobHazards": {"enabled": False}}, crds=False)
    assert not [o for o in off if o["metadata"]["name"] == "tandem-job-hazards"]


def test_a_namespaced_release_has_its_own_job_hazards_bound_to_its_namespaces() -> None:
    """Two namespaced releases (and a kustomize install) never share the cluster-scoped policy's
    name: helm would refuse the second, which it cannot adopt."""
    objs = render({"watchNamespaces": ["a", "b"], "namespace": {"name": "ops"}}, crds=False)
    policy = the(objs, "ValidatingAdmissionPolicy", "tandem-job-hazards-ops")
    binding = the(objs, "ValidatingAdmissionPolicyBinding", "tandem-job-hazards-ops")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
            ]
        }
    }
    assert not [o for o in objs if o["metadata"]["name"] == "tandem-job-hazards"]


def test_the_namespaced_overlay_binds_the_job_hazards_to_its_namespace_only() -> None:
    """Warnings for Jobs in namespaces Tandem does not watch would name a fix for nothing."""
    objs = kustomize(ROOT / "deploy" / "overlays" / "namespaced")
    binding = _hazards_binding(objs)
    watched = [a.removeprefix("--namespace=") for a in args(objs) if a.startswith("--namespace=")]
    assert watched == ["jobs"]
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": watched}
            ]
        }
    }
    base = _hazards_binding(kustomize(ROOT / "deploy" / "base"))
    assert "matchResources" not in base["spec"]  # the positive control: every namespace


def _hazards_binding(objs: list[Obj]) -> Obj:
    """By kind and name only: kustomize gives the cluster-scoped binding the base's namespace
    (it does not know the kind's scope; see CLUSTER_SCOPED)."""
    [binding] = [
        o
        for o in objs
        if o["kind"] == "ValidatingAdmissionPolicyBinding"
        and o["metadata"]["name"] == "tandem-job-hazards"
    ]
    return binding


def test_one_replica_runs_standalone() -> None:
    objs = render({"replicas": 1}, crds=False)
    assert the(objs, "Deployment", namespace="tandem-system")["spec"]["replicas"] == 1
    assert not any("Peering" in o["kind"] for o in objs)
    assert not any(a.startswith("--peering") for a in args(objs))
    assert not any("kopf.dev" in r["apiGroups"] for *_, r in rules(objs))
    three = render({"replicas": 3}, crds=False)
    assert "--peering=tandem" in args(three)
    the(three, "ClusterKopfPeering")


def test_metrics_values() -> None:
    off = render({"metrics": {"enabled": False, "service": {"enabled": True}}}, crds=False)
    assert "--metrics-port=0" in args(off)
    assert [p["name"] for p in container(off)["ports"]] == ["healthz"]
    assert not any(o["kind"] == "Service" for o in off)
    moved = render({"metrics": {"port": 9191, "service": {"enabled": True}}}, crds=False)
    assert "--metrics-port=9191" in args(moved)
    assert {"name": "metrics", "containerPort": 9191} in container(moved)["ports"]
    service = the(moved, "Service", "tandem-metrics", "tandem-system")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9191, "targetPort": "metrics"}]
    pod_labels = the(moved, "Deployment", namespace="tandem-system")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod_labels["metadata"]["labels"].items()
    assert not any(o["kind"] == "Service" for o in render(crds=False))


def test_image_resources_and_namespace_values() -> None:
    values = {
        "image": {"repository": "registry.example/tandem", "tag": "0.1.0", "pullPolicy": "Always"},
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": None},
        "namespace": {"name": "ops", "create": False},
        "extraArgs": ["--pod-selector=team=batch"],
    }
    objs = render(values, crds=False)
    operator = container(objs, "ops")
    assert operator["image"] == "registry.example/tandem:0.1.0"
    assert operator["imagePullPolicy"] == "Always"
    assert operator["resources"] == {"requests": {"cpu": "10m", "memory": "64Mi"}}
    assert operator["args"][-1] == "--pod-selector=team=batch"
    assert not any(o["kind"] == "Namespace" for o in objs)
    namespaced = [o for o in objs if o["kind"] in ("Deployment", "ServiceAccount")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"ops"}
    binding = the(objs, "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == "ops"


PROMETHEUS = [
    {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
]


@pytest.mark.parametrize("source", ["chart", "base", "namespaced overlay"])
def test_the_network_policy_admits_only_prometheus_on_the_metrics_port(source: str) -> None:
    objs = {
        "chart": lambda: render(crds=False),
        "base": lambda: kustomize(ROOT / "deploy" / "base"),
        "namespaced overlay": lambda: kustomize(ROOT / "deploy" / "overlays" / "namespaced"),
    }[source]()
    policy = the(objs, "NetworkPolicy", namespace="tandem-system")
    deployment = the(objs, "Deployment", namespace="tandem-system")
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected == deployment["spec"]["selector"]["matchLabels"]
    # Ingress only: egress stays open, for the API server.
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == PROMETHEUS
    assert rule["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    # The named port is the metrics port; /healthz (the kubelet's probes) gets no rule.
    ports = {p["name"]: p["containerPort"] for p in container(objs)["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}


def test_network_policy_values() -> None:
    assert not any(
        o["kind"] == "NetworkPolicy"
        for o in render({"networkPolicy": {"enabled": False}}, crds=False)
    )
    # No metrics port, or no one allowed: a policy with no rule, which admits nothing.
    for values in ({"metrics": {"enabled": False}}, {"networkPolicy": {"metricsFrom": []}}):
        policy = the(render(values, crds=False), "NetworkPolicy", namespace="tandem-system")
        assert policy["spec"]["ingress"] == [], values
    monitoring = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app": "vmagent"}},
        }
    ]
    objs = render(
        {"networkPolicy": {"metricsFrom": monitoring}, "metrics": {"port": 9191}}, crds=False
    )
    [rule] = the(objs, "NetworkPolicy", namespace="tandem-system")["spec"]["ingress"]
    assert rule["from"] == monitoring
    assert {"name": "metrics", "containerPort": 9191} in container(objs)["ports"]
    done = helm(
        "template",
        "tandem",
        str(CHART),
        "--set-json",
        "networkPolicy.metricsFrom=[{}]",
        check=False,
    )
    assert done.returncode != 0, "a peer that selects nothing is refused by the schema"


@pytest.mark.parametrize("values", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
def test_the_network_policy_never_admits_every_source(values: dict[str, Any]) -> None:
    namespace = values.get("namespace", {}).get("name", "tandem-system")
    policy = the(render(values, crds=False), "NetworkPolicy", namespace=namespace)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    for rule in policy["spec"]["ingress"]:
        assert rule.get("from") and all(rule["from"]), rule
        # A pod selector alone, or with every namespace, lets in whoever labels a pod so.
        assert all(peer.get("namespaceSelector") for peer in rule["from"]), rule
        assert [p["port"] for p in rule["ports"]] == ["metrics"], rule


DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_a_digest_names_the_image_by_digest_instead_of_its_tag() -> None:
    by_tag = render({"image": {"repository": "registry.example/tandem", "tag": "0.1.0"}})
    assert container(by_tag)["image"] == "registry.example/tandem:0.1.0"
    values = {"image": {"repository": "registry.example/tandem", "tag": "0.1.0", "digest": DIGEST}}
    assert container(render(values, crds=False))["image"] == f"registry.example/tandem@{DIGEST}"
    # The default image is built locally and never pushed: it has no digest, so none is set.
    assert container(render(crds=False))["image"] == "local.invalid/tandem/operator:local"


def test_the_chart_refuses_the_local_placeholder_image_outside_the_local_cluster() -> None:
    """Issue #25: with the defaults, the operator's image is local.invalid/tandem/operator:local,
    which only the project's local cluster has: a real install must name its image."""
    done = helm("template", "tandem", str(CHART), check=False)
    assert done.returncode != 0
    assert "image.repository is the placeholder local.invalid/tandem/operator" in done.stderr
    # An explicit repository, or a digest, or the local cluster: each renders.
    explicit = {"image": {"repository": "registry.example/tandem", "tag": "0.1.0"}}
    assert container(render(explicit, local=False))["image"] == "registry.example/tandem:0.1.0"
    pinned = {"image": {"repository": "local.invalid/tandem/operator", "digest": DIGEST}}
    assert container(render(pinned, local=False))["image"].endswith(DIGEST)
    # The helper's placeholder too, once exec would use it.
    helper = {
        **explicit,
        "exec": {"enabled": True},
        "helperImage": "local.invalid/tandem/busybox:local",
    }
    done = helm("template", "tandem", str(CHART), *set_args(helper), check=False)
    assert done.returncode != 0 and "helperImage local.invalid/" in done.stderr
    # Without exec, no helper: nothing to refuse.
    render({**helper, "exec": {"enabled": False}}, local=False)


@pytest.mark.parametrize(
    "digest",
    ["0123456789abcdef" * 4, "sha256:" + "0" * 63, "sha256:" + "A" * 64, "sha512:" + "0" * 64],
)
def test_the_schema_rejects_what_is_not_a_sha256_digest(digest: str) -> None:
    done = helm(
        "template", "tandem", str(CHART), "--set-string", f"image.digest={digest}", check=False
    )
    assert done.returncode != 0
    assert "digest" in done.stderr


@pytest.mark.parametrize("values", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
def test_no_wildcards_and_no_secrets_in_any_variant(values: dict[str, Any]) -> None:
    for _, _, name, rule in rules(render(values, crds=False)):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), (name, rule)
            assert not any("*" in item for item in rule.get(field, [])), (name, rule)
        assert "secrets" not in rule["resources"], (name, rule)
        assert "nonResourceURLs" not in rule, (name, rule)
        # Names only narrow a rule; the one rule with names is the peering's own object.
        if "resourceNames" in rule:
            assert rule["resources"] == ["clusterkopfpeerings"], (name, rule)
            assert rule["verbs"] == ["get", "patch"], (name, rule)


@pytest.mark.parametrize("values", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
def test_the_security_context_holds_in_every_variant(values: dict[str, Any]) -> None:
    base = kustomize(ROOT / "deploy" / "base")
    objs = render(values, crds=False)
    namespace = values.get("namespace", {}).get("name", "tandem-system")
    pod = the(objs, "Deployment", namespace=namespace)["spec"]["template"]["spec"]
    base_pod = the(base, "Deployment", namespace="tandem-system")["spec"]["template"]["spec"]
    assert pod["securityContext"] == base_pod["securityContext"]
    assert container(objs, namespace)["securityContext"] == container(base)["securityContext"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container(objs, namespace)[probe] == container(base)[probe]


def test_the_crds_are_the_repository_files_not_copies() -> None:
    for name in ("sidecarpolicies.tandem.dev.yaml", "kopf-peering.yaml"):
        link = CHART / "crds" / name
        assert link.is_symlink(), f"{link} must link to crds/{name}"
        assert link.resolve() == (ROOT / "crds" / name).resolve()


def test_the_rendered_crds_are_the_repository_crds() -> None:
    crds = [o for o in render() if o["kind"] == "CustomResourceDefinition"]
    expected = [
        o
        for name in ("kopf-peering.yaml", "sidecarpolicies.tandem.dev.yaml")
        for o in parse((ROOT / "crds" / name).read_text())
    ]
    assert sorted(crds, key=str) == sorted(expected, key=str)
    assert not any(o["kind"] == "CustomResourceDefinition" for o in render(crds=False))


def test_the_packaged_chart_carries_the_crds_themselves(tmp_path: Path) -> None:
    helm("package", str(CHART), "--destination", str(tmp_path))
    [package] = tmp_path.glob("tandem-*.tgz")
    with tarfile.open(package) as tar:
        for name in ("sidecarpolicies.tandem.dev.yaml", "kopf-peering.yaml"):
            member = tar.getmember(f"tandem/crds/{name}")
            assert member.isfile(), f"{name} is packed as a link"
            packed = tar.extractfile(member)
            assert packed is not None
            assert packed.read() == (ROOT / "crds" / name).read_bytes()
    # The packaged chart renders what the directory renders.
    packaged = helm(
        "template", "tandem", str(package), "--include-crds", "--set", "localCluster=true"
    ).stdout
    assert by_key(parse(packaged)) == by_key(render())


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--set", "metrics.port=8080"], "port"),  # the liveness probe's: the operator would exit
        (["--set", "metrics.port=null"], "port"),  # would render --metrics-port= (exit 2)
        (["--set", "sweeper.action=null"], "action"),  # would render --sweep-action= (exit 2)
        (["--set", "replicas=100000000000"], "replicas"),
        (["--set-string", "image.tag=v1 2"], "tag"),
        (["--set-string", "image.repository=reg.io/x:1.0"], "repository"),
        (["--set-string", "helperImage=a b", "--set", "exec.enabled=true"], "helperImage"),
        (["--set-json", 'extraArgs=["--allow-exec-actions"]'], "extraArgs"),  # with --no-exec
        (["--set-json", 'extraArgs=["--sweep-action=Delete"]'], "extraArgs"),  # past its RBAC
        (["--set-json", 'extraArgs=["--liveness-port=9"]'], "extraArgs"),  # past the probe
        (["--set-json", 'resources={"limit": {"memory": "512Mi"}}'], "resources"),  # a typo
        (["--set-string", "resources.limits.memory=512 MB"], "memory"),  # no quantity
    ],
)
def test_the_schema_refuses_values_that_would_crash_loop_or_bypass_the_chart(
    flags: list[str], field: str
) -> None:
    done = helm("template", "tandem", str(CHART), "--set", "localCluster=true", *flags, check=False)
    assert done.returncode != 0 and field in done.stderr, done.stderr


def test_the_schema_admits_what_the_refusals_stand_beside() -> None:
    """The positive control: the same fields with usable values render."""
    for flags in (
        ["--set", "metrics.port=9091", "--set", "replicas=3"],
        [
            "--set-string",
            "image.repository=reg.example:5000/team/tandem",
            "--set-string",
            "image.tag=v1.2_rc-3",
        ],
        [
            "--set",
            "exec.enabled=true",
            "--set-string",
            "helperImage=reg.example/busybox:1.36@sha256:" + "a" * 64,
        ],
        ["--set", "exec.enabled=true", "--set-json", 'extraArgs=["--allow-exec-actions"]'],
        ["--set-json", 'extraArgs=["--pod-selector=team=batch", "--log-level=DEBUG"]'],
        ["--set-json", 'extraArgs=["--listen-address=::"]'],  # an IPv6-only cluster's probe
        ["--set", "metrics.enabled=false", "--set", "metrics.port=8080"],  # the port is unused
        ["--set-json", 'resources={"requests": {"cpu": 1, "memory": "1.5Gi"}, "limits": {}}'],
    ):
        done = helm(
            "template", "tandem", str(CHART), "--set", "localCluster=true", *flags, check=False
        )
        assert done.returncode == 0, (flags, done.stderr)
