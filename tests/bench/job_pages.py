"""Benchmark: the memory of the sweep's list of Jobs, by page size. Prints figures; asserts nothing.

    PYTHONPATH=operator:deploy/local .venv/bin/python -m tests.bench.job_pages

A server on the loopback interface (its own process) answers the real `Reads.jobs` with JOBS Jobs,
each carrying an annotation of 250 KiB on itself and on its pod template, as a tenant may write
them. Each page size is listed in a fresh process, and its peak resident memory printed: a page is
held whole, as JSON and as dicts, before the sweep keeps two fields of each Job.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from tandem.adapters import pykube_reads
from tests.unit.loopback import write_kubeconfig

JOBS = 500
PAGES = (500, 50)
BIG = "x" * (250 * 1024)


def _job(n: int) -> dict[str, Any]:
    annotations = {"tenant.example/blob": BIG}
    return {
        "metadata": {"name": f"job-{n}", "uid": f"uid-{n}", "annotations": annotations},
        "spec": {"template": {"metadata": {"annotations": annotations}}},
        "status": {},
    }


class _Jobs(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        start = int(query.get("continue", ["0"])[0])
        end = min(start + int(query["limit"][0]), JOBS)
        page = {
            "items": [_job(n) for n in range(start, end)],
            "metadata": {"continue": str(end)} if end < JOBS else {},
        }
        body = json.dumps(page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def _kubeconfig(directory: Path, port: int) -> Path:
    return write_kubeconfig(directory / "kubeconfig", f"http://127.0.0.1:{port}")


def _list(kubeconfig: str, page: int) -> None:
    """In a fresh process: one list of every Job at PAGE a page; the peak memory it took."""
    pykube_reads.PAGE_SIZE = page
    reads = pykube_reads.Reads(kubeconfig)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kept = reads.jobs("bench", lambda job: job["metadata"]["uid"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{page:>5} a page  {len(kept):>4} Jobs  peak RSS {peak / 1024:6.0f} MiB  "
        f"(before the list: {before / 1024:.0f} MiB)"
    )


def main() -> None:
    if len(sys.argv) == 3:
        _list(sys.argv[1], int(sys.argv[2]))
        return
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Jobs)
    serving = multiprocessing.Process(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            kubeconfig = _kubeconfig(Path(directory), int(server.server_address[1]))
            print(f"{JOBS} Jobs, each with 2 x 250 KiB of annotations")
            for page in PAGES:
                subprocess.run(
                    [sys.executable, "-m", "tests.bench.job_pages", str(kubeconfig), str(page)],
                    check=True,
                    timeout=300,
                )
    finally:
        serving.terminate()


if __name__ == "__main__":
    main()
