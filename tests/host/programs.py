"""Which external programs the project's scripts and harness run, found in their sources.

Python (deploy/local, tests): argv lists, the first element a program name, passed to subprocess
or built as an argv (a flag follows, or the rest is spliced in), and the scripts handed to
`bash -c` / `sh -c`. Shell (every *.sh there and in .ci): the first word of each command, in
pipelines, lists and `$( )`, with builtins, keywords, functions and variables left out and here
documents skipped. Container commands in pod manifests (a dict's `command` or `args`) run in the
images, not on this machine, and are left out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_TREES = ("deploy/local", "tests")
SHELL_TREES = ("deploy/local", "tests", ".ci")
NOT_SCANNED = ("tests/unit", "tests/bench", "tests/host")
"""Pure tests, benchmarks (not run by the tests) and this scanner's own tests."""

RUN_BY_COMPONENTS = {
    "/usr/sbin/runc": "containerd starts every container with it (localcluster/runtime.py)",
    "/usr/lib/cni/bridge": "containerd's CNI network for pods",
    "/usr/lib/cni/host-local": "containerd's CNI address management",
    "/usr/lib/cni/portmap": "containerd's CNI port mappings",
    "iptables": "kube-proxy's service rules (mode iptables)",
    "conntrack": "kube-proxy clears stale UDP flows with it",
    "/bin/busybox": "copied into the busybox and pause-era images (images/build_images.py)",
    "/usr/sbin/haproxy": "copied into the haproxy image with the libraries ldd lists",
}
"""Programs that the cluster's own components run, or that the image builds copy: no line of
the project's code names them as a command."""

_PROGRAM = re.compile(r"^(/[\w./+-]+|[a-z][\w.+-]*)$")
_EXEC_CALLS = {"run", "Popen", "check_output", "check_call", "call", "in_netns"}
_SHELL_WORDS = frozenset(
    [
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "while",
        "until",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "function",
        "select",
        "time",
        "return",
        "exit",
        "break",
        "continue",
        "local",
        "export",
        "declare",
        "readonly",
        "set",
        "unset",
        "shift",
        "trap",
        "wait",
        "cd",
        "pwd",
        "echo",
        "printf",
        "read",
        "test",
        "[",
        "[[",
        "]]",
        "true",
        "false",
        "eval",
        "exec",
        "source",
        ".",
        "command",
        "type",
        "hash",
        "alias",
        "umask",
        "getopts",
        "let",
        "mapfile",
        "kill",
        "jobs",
        "fg",
        "bg",
        "disown",
        "builtin",
        "caller",
        "compgen",
        "complete",
        "enable",
        "help",
        "history",
        "logout",
        "popd",
        "pushd",
        "shopt",
        "suspend",
        "times",
        "ulimit",
        "unalias",
        "!",
        "{",
        "}",
        "(",
        ")",
        "((",
        "))",
    ]
)


def _scanned(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return not any(relative.startswith(prefix + "/") for prefix in NOT_SCANNED)


def _argv_head(node: ast.List | ast.Tuple) -> str | None:
    if not node.elts:
        return None
    first = node.elts[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    return first.value if _PROGRAM.match(first.value) else None


def _looks_like_argv(node: ast.List | ast.Tuple) -> bool:
    rest = node.elts[1:]
    if not rest:
        return False
    second = rest[0]
    if isinstance(second, ast.Starred):
        return True
    if isinstance(second, ast.Constant) and isinstance(second.value, str):
        return second.value.startswith("-")
    if isinstance(second, ast.JoinedStr) and second.values:
        head = second.values[0]
        return isinstance(head, ast.Constant) and str(head.value).startswith("-")
    return False


def _shell_script(node: ast.List | ast.Tuple, strings: dict[str, str]) -> str | None:
    """The script of `bash -c SCRIPT` / `sh -c SCRIPT`: a literal, or a name bound to one."""
    values = [
        e.value if isinstance(e, ast.Constant) else strings.get(getattr(e, "id", ""))
        for e in node.elts
    ]
    for index, value in enumerate(values[:-1]):
        shell = str(values[index - 1]).rsplit("/", 1)[-1] if index else ""
        if value == "-c" and shell in ("bash", "sh"):
            script = values[index + 1]
            return script if isinstance(script, str) else None
    return None


def python_programs(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    in_manifests = set()
    strings = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in ("command", "args"):
                    in_manifests.add(id(value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            args = [a for a in node.args if isinstance(a, ast.List | ast.Tuple)]
            if name in _EXEC_CALLS and args and (head := _argv_head(args[0])):
                yield head
            if name == "which" and node.args and isinstance(node.args[0], ast.Constant):
                yield str(node.args[0].value)
        if isinstance(node, ast.List | ast.Tuple) and id(node) not in in_manifests:
            if (head := _argv_head(node)) and _looks_like_argv(node):
                yield head
            if script := _shell_script(node, strings):
                yield from shell_programs_in(script)


def _strip_data(lines: list[str]) -> Iterator[str]:
    """The lines without here documents and the bodies of array assignments (data, not code)."""
    ending: str | None = None
    for line in lines:
        if ending is not None:
            if line.strip() == ending or (ending == ")" and ")" in line):
                ending = None
            continue
        if match := re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line):
            ending = match.group(1)
        elif re.match(r"\s*\w+=\([^)]*$", line):
            ending = ")"
            continue
        yield line


def shell_programs_in(text: str) -> Iterator[str]:
    lines = list(_strip_data(text.splitlines()))
    functions = {m.group(1) for line in lines if (m := re.match(r"\s*([\w-]+)\s*\(\)\s*\{", line))}
    for raw in lines:
        code = re.sub(r"(^|\s)#.*$", "", raw)
        code = re.sub(r"\$?\(\([^)]*\)\)", " ", code)  # arithmetic
        # Commands inside $( ) count; the text of quoted strings does not.
        segments = re.findall(r"\$\(([^()]*)\)", code)
        code = re.sub(r"'[^']*'|\"(?:[^\"\\\\]|\\\\.)*\"", " STRING ", code)
        segments += re.split(r"\|\||&&|[|;&(){}]|\bthen\b|\bdo\b|\belse\b", code)
        for segment in segments:
            words = [w for w in segment.split() if not re.match(r"^\w+=", w)]
            while words and words[0] in ("!", "exec", "command", "time", "sudo", "env"):
                words = words[1:]
            if not words:
                continue
            word = words[0]
            if word in _SHELL_WORDS or word in functions or not _PROGRAM.match(word):
                continue
            if word.startswith(("$", "-", ".")) or word == "STRING":
                continue
            yield word


def _runs_programs(path: Path) -> bool:
    """Python that can start a process on this machine; the tests' other argv lists are
    commands for containers, run through the API."""
    imports = re.search(r"^import subprocess", path.read_text(), re.MULTILINE)
    return "deploy/local" in path.as_posix() or imports is not None


def programs() -> dict[str, set[str]]:
    """Each program found, with the files that run it."""
    found: dict[str, set[str]] = {}
    for tree in PYTHON_TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            if _scanned(path) and _runs_programs(path):
                for program in python_programs(path):
                    found.setdefault(program, set()).add(path.relative_to(ROOT).as_posix())
    for tree in SHELL_TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            if (
                path.is_file()
                and _scanned(path)
                and (
                    path.suffix == ".sh"
                    or path.read_bytes()[:20].startswith(b"#!/usr/bin/env bash")
                )
            ):
                for program in shell_programs_in(path.read_text()):
                    found.setdefault(program, set()).add(path.relative_to(ROOT).as_posix())
    return found
