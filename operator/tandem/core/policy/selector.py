"""Kubernetes label selectors (matchLabels and matchExpressions), evaluated in pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = expression.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        return False
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # The CRD schema rejects other operators; match nothing rather than everything.


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """True when LABELS satisfy SELECTOR. An empty selector matches every pod, as in Kubernetes."""
    if not selector:
        return True
    if not isinstance(selector, Mapping):
        return False  # Not a selector: it selects nothing rather than everything.
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return False
    if not all(isinstance(e, Mapping) for e in expressions):
        return False
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    return all(_expression_matches(e, labels) for e in expressions)
