"""Kubernetes label selectors (matchLabels and matchExpressions), evaluated in pure Python."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
LABEL_KEY = re.compile(
    rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}"
)
"""A label key, as the API server checks it: an optional DNS subdomain prefix, then a name."""
LABEL_VALUE = re.compile(f"({_NAME})?")
_RULE = "1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"


def _key_problem(key: Any, where: str) -> str:
    prefix = str(key).rpartition("/")[0]
    if isinstance(key, str) and len(prefix) <= 253 and LABEL_KEY.fullmatch(key):
        return ""
    return f"{where}: {key!r} is not a label key (an optional DNS prefix and '/', then {_RULE})"


def _value_problem(value: Any, where: str) -> str:
    if isinstance(value, str) and LABEL_VALUE.fullmatch(value):
        return ""
    return f"{where}: {value!r} is not a label value (empty, or {_RULE})"


def selector_problem(selector: Any, where: str = "spec.selector") -> str:
    """Why SELECTOR names a label key or value that no pod can carry, in words for the policy's
    status; '' when it names none. Such a selector is no selection: it matches no pod, or, with
    NotIn or DoesNotExist, every pod."""
    if not selector:
        return ""
    if not isinstance(selector, Mapping):
        return f"{where}: give matchLabels and/or matchExpressions"
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list):
        return f"{where}: matchLabels is a map, matchExpressions a list"
    for key, value in labels.items():
        at = f"{where}.matchLabels"
        if problem := _key_problem(key, at) or _value_problem(value, f"{at}[{key}]"):
            return problem
    for i, expression in enumerate(expressions):
        at = f"{where}.matchExpressions[{i}]"
        if not isinstance(expression, Mapping):
            return f"{at}: give key, operator and values"
        values = expression.get("values") or []
        if not isinstance(values, list):
            return f"{at}.values: give a list"
        problems = (_value_problem(v, f"{at}.values[{j}]") for j, v in enumerate(values))
        if problem := _key_problem(expression.get("key"), f"{at}.key") or next(
            (p for p in problems if p), ""
        ):
            return problem
    return ""


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
