"""A validating admission webhook on `CONNECT pods/exec` that makes the real apiserver refuse execs.

The apiserver turns a denied admission into an HTTP error with the status code the webhook chose,
so a webhook that denies with 429 or 500 makes the apiserver itself answer an exec's handshake
with 429 or 500: the faults Tandem's stopper must retry with backoff.

Two halves in one file:
- run as a script (stdlib only), it is the HTTPS server. The tests start it inside the cluster's
  netns, on 127.0.0.1 there, where only the apiserver can reach it. It denies the first
  `--fail-first` execs of `--user` (the operator) into each pod with the codes of `--codes` in
  turn (-1: every one), allows the rest and everyone else's, and appends every request, with
  its time, to `requests.jsonl`;
- imported, `ExecWebhook` makes its CA and serving certificate with openssl, starts and stops it,
  and registers it with a ValidatingWebhookConfiguration limited to one namespace.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DENIAL_MESSAGE = "tandem-fault-injection: exec refused"


# --- The server (runs inside the netns) --------------------------------------------------------


def _serve(directory: Path, codes: list[int], fail_first: int, user: str) -> None:
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    log = directory / "requests.jsonl"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = review["request"]
            key = f"{request.get('namespace')}/{request.get('name')}"
            requester = request.get("userInfo", {}).get("username")
            with lock:
                index = seen[key]
                if requester == user:
                    seen[key] += 1
                deny = requester == user and (fail_first < 0 or index < fail_first)
                code = codes[index % len(codes)] if deny else 0
                record = {
                    "time": time.time(),
                    "namespace": request.get("namespace"),
                    "pod": request.get("name"),
                    "user": requester,
                    "operation": request.get("operation"),
                    "subresource": request.get("subResource"),
                    "container": (request.get("object") or {}).get("container"),
                    "denied_with": code,
                }
                with open(log, "a") as out:
                    out.write(json.dumps(record) + "\n")
            response: dict[str, Any] = {"uid": request["uid"], "allowed": not deny}
            if deny:
                response["status"] = {
                    "code": code,
                    "message": f"{DENIAL_MESSAGE} with {code} (exec {index + 1} into this pod)",
                }
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": response,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    # Written last: the port file says the server is ready.
    (directory / "port.tmp").write_text(str(server.server_address[1]))
    (directory / "port.tmp").rename(directory / "port")
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--codes", default="500", help="comma-separated, used in turn")
    parser.add_argument("--fail-first", type=int, default=-1, help="-1: deny every exec")
    parser.add_argument("--user", default="tandem-operator", help="whose execs are denied")
    args = parser.parse_args()
    _serve(args.dir, [int(c) for c in args.codes.split(",")], args.fail_first, args.user)


# --- The tests' side ---------------------------------------------------------------------------


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(directory: Path) -> None:
    """A throwaway CA and a serving certificate for 127.0.0.1 (P-256, like the cluster's pki)."""
    for stem in ("ca", "server"):
        _openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(directory / f"{stem}.key"),
        )  # fmt: skip
    _openssl(
        "req", "-x509", "-new", "-key", str(directory / "ca.key"), "-days", "1",
        "-subj", "/CN=tandem-exec-webhook-ca", "-out", str(directory / "ca.crt"),
    )  # fmt: skip
    _openssl(
        "req", "-new", "-key", str(directory / "server.key"), "-subj", "/CN=exec-webhook",
        "-out", str(directory / "server.csr"),
    )  # fmt: skip
    ext = directory / "server.ext"
    ext.write_text("extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", str(directory / "server.csr"), "-CA", str(directory / "ca.crt"),
        "-CAkey", str(directory / "ca.key"), "-CAcreateserial", "-days", "1",
        "-extfile", str(ext), "-out", str(directory / "server.crt"),
    )  # fmt: skip


@dataclasses.dataclass
class ExecWebhook:
    """One running webhook server and its registration."""

    directory: Path
    process: subprocess.Popen[bytes]
    port: int
    name: str

    @classmethod
    def start(
        cls, directory: Path, netns: Path, name: str, codes: list[int], fail_first: int
    ) -> ExecWebhook:
        directory.mkdir(parents=True, exist_ok=True)
        make_certificates(directory)
        log = open(directory / "server.log", "wb")  # noqa: SIM115 (the child keeps it)
        # nsenter joins only the network namespace: the server sees the host's files.
        process = subprocess.Popen(
            [
                "nsenter", f"--net={netns}", "--", sys.executable, __file__,
                f"--dir={directory}", f"--codes={','.join(map(str, codes))}",
                f"--fail-first={fail_first}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 15
        while not (directory / "port").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(
                    f"exec webhook did not start:\n{(directory / 'server.log').read_text()}"
                )
            time.sleep(0.05)
        return cls(directory, process, int((directory / "port").read_text()), name)

    def configuration(self, namespace: str) -> dict[str, Any]:
        """The ValidatingWebhookConfiguration: CONNECT on pods/exec in NAMESPACE only. Ignore on
        failure, so that a dead server never blocks anyone's exec: denials are answers, not
        failures, and still count."""
        ca_bundle = (self.directory / "ca.crt").read_bytes()
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [
                {
                    "name": "exec-faults.e2e.tandem.dev",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{self.port}/validate",
                        "caBundle": base64.b64encode(ca_bundle).decode(),
                    },
                    "rules": [
                        {
                            "operations": ["CONNECT"],
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "resources": ["pods/exec"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "failurePolicy": "Ignore",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }

    def requests(self, pod: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
        """The exec requests the webhook saw, oldest first, optionally of one pod or user."""
        path = self.directory / "requests.jsonl"
        if not path.exists():
            return []
        records = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [
            r
            for r in records
            if (pod is None or r["pod"] == pod) and (user is None or r["user"] == user)
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    main()
