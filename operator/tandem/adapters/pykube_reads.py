"""pykube-ng, and only here: its role is plain reads (paginated lists, GETs) and deletes, for the
sweeper and `tandem explain`. Exec and ephemeral containers, which pykube lacks, are `kubeclient`'s.

pykube has no pagination of its own, so lists follow `continue` tokens by hand: a cluster with
thousands of Job pods is read in pages, not in one response that the API server must build.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import pykube
import requests

from .kubeconfig import pykube_config

PAGE_SIZE = 50
"""Objects per page. A page is held whole, as JSON and as dicts, before KEEP trims it, and a
tenant may give each Job hundreds of KiB of annotations: one list of 500 Jobs with 2 x 250 KiB
each peaked at 800 MiB at 500 a page (over the operator's limit of 512 MiB, at every sweep that
lists Jobs), and at 140 MiB at 50 (tests/bench/job_pages.py). The watch's initial list takes
pages of 50 too."""
T = TypeVar("T")


class Reads:
    """Blocking: the runtime calls it off the event loop."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._api = self._client()

    def _client(self) -> pykube.HTTPClient:
        return pykube.HTTPClient(pykube_config(self._kubeconfig), timeout=30)

    def _send(self, method: str, **kwargs: Any) -> requests.Response:
        """pykube's METHOD; on a 401, once more with the configuration loaded again. pykube
        sends the token its KubeConfig read when it was made, for as long as it lives; a
        service account's token is replaced while Tandem runs (see `kubeconfig`)."""
        response: requests.Response = getattr(self._api, method)(**kwargs)
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            self._api = self._client()
            response = getattr(self._api, method)(**kwargs)
        return response

    def _list(
        self,
        url: str,
        namespace: str | None,
        keep: Callable[[dict[str, Any]], T],
        selector: str = "",
        version: str = "v1",
    ) -> list[T]:
        """What KEEP takes of each item, a page at a time: a whole list of Jobs is large as
        dicts (docs/benchmarks.md), and the caller needs a few fields of each."""
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if selector:
            params["labelSelector"] = selector
        items: list[T] = []
        while True:
            kwargs: dict[str, Any] = {"url": url, "params": params, "version": version}
            if namespace:
                kwargs["namespace"] = namespace
            response = self._send("get", **kwargs)
            self._api.raise_for_status(response)
            page = response.json()
            items.extend(keep(item) for item in page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = token
            del page, response  # Not alive while the next page is read: one page at a time.

    def jobs(self, namespace: str | None, keep: Callable[[dict[str, Any]], T]) -> list[T]:
        """What KEEP takes of each Job, listed once per sweep: owner lookups are batched, never
        one GET per pod."""
        return self._list("jobs", namespace, keep, version="batch/v1")

    def delete_pod(
        self,
        namespace: str,
        name: str,
        grace_seconds: int | None,
        uid: str,
        resource_version: str,
    ) -> bool:
        """Deletes with the pod's own grace period, only if it is still the pod the sweep judged
        (UID) and unchanged since (RESOURCE_VERSION); False when it was gone or had changed."""
        body: dict[str, Any] = {
            "propagationPolicy": "Background",
            "preconditions": {"uid": uid, "resourceVersion": resource_version},
        }
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        response = self._send(
            "delete", url=f"pods/{name}", namespace=namespace, data=json.dumps(body)
        )
        if response.status_code in (404, 409):
            return False
        self._api.raise_for_status(response)
        return True

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._send("get", url=f"pods/{name}", namespace=namespace)
        if response.status_code == 404:
            return None
        self._api.raise_for_status(response)
        return dict(response.json())

    def peering_answer(self, name: str) -> int:
        """The API server's HTTP status for a GET of the ClusterKopfPeering NAME."""
        response = self._send("get", url=f"clusterkopfpeerings/{name}", version="kopf.dev/v1")
        return int(response.status_code)

    def may(self, verb: str, group: str, resource: str, name: str = "") -> bool:
        """Whether this identity may VERB the cluster-scoped RESOURCE NAME (all of them without
        NAME): a SelfSubjectAccessReview, which every authenticated identity may create."""
        attributes = {"verb": verb, "group": group, "resource": resource, "name": name}
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        response = self._send(
            "post",
            url="selfsubjectaccessreviews",
            version="authorization.k8s.io/v1",
            data=json.dumps(review),
        )
        self._api.raise_for_status(response)
        return bool((response.json().get("status") or {}).get("allowed"))

    def sidecar_policies(self, namespace: str) -> list[dict[str, Any]]:
        return self._list("sidecarpolicies", namespace, dict, version="tandem.dev/v1alpha1")

    def events_about(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        params = {"fieldSelector": f"involvedObject.uid={uid}"}
        response = self._send("get", url="events", namespace=namespace, params=params)
        self._api.raise_for_status(response)
        return list(response.json().get("items") or ())
