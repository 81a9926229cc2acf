"""pykube-ng, and only here: plain reads (paginated lists) and deletes.

pykube has no pagination of its own, so lists follow `continue` tokens by hand: a cluster with
thousands of Job pods is read in pages, not in one response that the API server must build.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pykube

PAGE_SIZE = 500


def _client(kubeconfig: str | None) -> pykube.HTTPClient:
    path = kubeconfig or os.environ.get("KUBECONFIG")
    config = pykube.KubeConfig.from_file(path) if path else pykube.KubeConfig.from_service_account()
    return pykube.HTTPClient(config, timeout=30)


class Reads:
    """Blocking: the runtime calls it off the event loop."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        self._api = _client(kubeconfig)

    def _list(
        self, url: str, namespace: str | None, selector: str = "", version: str = "v1"
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if selector:
            params["labelSelector"] = selector
        items: list[dict[str, Any]] = []
        while True:
            kwargs: dict[str, Any] = {"url": url, "params": params, "version": version}
            if namespace:
                kwargs["namespace"] = namespace
            response = self._api.get(**kwargs)
            self._api.raise_for_status(response)
            page = response.json()
            items.extend(page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = token

    def jobs(self, namespace: str | None) -> list[dict[str, Any]]:
        """Jobs, listed once per sweep: owner lookups are batched, never one GET per pod."""
        return self._list("jobs", namespace, version="batch/v1")

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None) -> bool:
        """Deletes with the pod's own grace period; False when it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        response = self._api.delete(url=f"pods/{name}", namespace=namespace, data=json.dumps(body))
        if response.status_code == 404:
            return False
        self._api.raise_for_status(response)
        return True

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._api.get(url=f"pods/{name}", namespace=namespace)
        if response.status_code == 404:
            return None
        self._api.raise_for_status(response)
        return dict(response.json())

    def sidecar_policies(self, namespace: str) -> list[dict[str, Any]]:
        return self._list("sidecarpolicies", namespace, version="tandem.dev/v1alpha1")

    def events_about(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        params = {"fieldSelector": f"involvedObject.uid={uid}"}
        response = self._api.get(url="events", namespace=namespace, params=params)
        self._api.raise_for_status(response)
        return list(response.json().get("items") or ())
