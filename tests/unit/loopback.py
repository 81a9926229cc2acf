"""An HTTP server on the loopback interface that answers the real clients with canned answers,
one connection per request (no cluster)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import yaml


def answer(status: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    """An HTTP/1.1 answer that closes its connection: a client keeping it for the next request
    would race the server's close and read a reset instead of the next answer."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
    return head.encode() + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def read_request(connection: socket.socket) -> tuple[bytes, bytes]:
    """One request, whole: its head, and its body by Content-Length. Answering before the body is
    read would close the connection on unread data, which the client sees as a reset."""
    connection.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        if not (chunk := connection.recv(65536)):
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length and (chunk := connection.recv(65536)):
        body += chunk
    return head, body


def serve(answers: list[bytes]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """A port that answers one request per entry of ANSWERS, in order, and the requests it read.
    An empty answer is silence, until the client gives up."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[tuple[bytes, bytes]] = []

    def run() -> None:
        with server:
            for reply in answers:
                connection, _ = server.accept()
                with connection:
                    seen.append(read_request(connection))
                    if reply:
                        connection.sendall(reply)
                    else:
                        while connection.recv(65536):
                            pass

    threading.Thread(target=run, daemon=True).start()
    return int(server.getsockname()[1]), seen


def write_kubeconfig(path: Path, server: str, token: str = "t", ca: Path | None = None) -> Path:
    """A kubeconfig at PATH for SERVER (loopback in the tests and benchmarks that send to it),
    with a bearer TOKEN and, if given, a CA file."""
    cluster = {"server": server} | ({"certificate-authority": str(ca)} if ca else {})
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path
