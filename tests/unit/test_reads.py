"""pykube's lists, through its transport's seam (no cluster): every page asked for is small, and
every page is followed to the end."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
from pykube.http import KubernetesHTTPAdapter

from tandem.adapters import Reads
from tandem.adapters.pykube_reads import PAGE_SIZE

from .loopback import write_kubeconfig


def _job(n: int) -> dict[str, Any]:
    return {"metadata": {"name": f"job-{n}", "uid": f"uid-{n}"}}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    return str(write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9"))


def test_jobs_are_listed_in_small_pages_to_the_last(
    kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 2 * PAGE_SIZE + 7
    asked: list[dict[str, list[str]]] = []

    def send(_: Any, request: requests.PreparedRequest, **__: Any) -> requests.Response:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(str(request.url)).query)
        asked.append(query)
        start = int(query.get("continue", ["0"])[0])
        end = min(start + int(query["limit"][0]), total)
        metadata = {"continue": str(end)} if end < total else {}
        response = requests.Response()
        response.status_code = 200
        response.headers["content-type"] = "application/json"
        page = {"items": [_job(n) for n in range(start, end)], "metadata": metadata}
        response._content = json.dumps(page).encode()
        return response

    monkeypatch.setattr(KubernetesHTTPAdapter, "_do_send", send)
    uids = Reads(kubeconfig).jobs("ns", lambda job: job["metadata"]["uid"])
    assert uids == [f"uid-{n}" for n in range(total)]
    assert [q["limit"] for q in asked] == [["50"]] * 3  # a tenant's large Jobs, 50 at a time
