"""Hypothesis strategies from an OpenAPI v3 (structural) schema: the CRD's own, so that fuzzed
SidecarPolicy specs follow the schema as it is, not a copy of it."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_NAME = st.from_regex(r"[a-z]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    pattern = schema.get("pattern")
    if pattern == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$":
        return _NAME  # container names: keep them short and readable
    if pattern:
        return st.from_regex(pattern, fullmatch=True).filter(
            lambda s: len(s) <= schema.get("maxLength", 64)
        )
    return st.text(
        st.characters(min_codepoint=32, max_codepoint=126),
        min_size=schema.get("minLength", 0),
        max_size=min(schema.get("maxLength", 12), 12),
    )


def from_openapi(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for SCHEMA's types, enums, bounds and required fields. CEL rules are not
    modelled: the API server judges those, which is what the fuzz test is about."""
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        if not properties:
            return st.dictionaries(_NAME, st.just("x"), max_size=2)
        required = set(schema.get("required") or ())
        return st.fixed_dictionaries(
            {k: from_openapi(v) for k, v in properties.items() if k in required},
            optional={k: from_openapi(v) for k, v in properties.items() if k not in required},
        )
    if kind == "array":
        items = from_openapi(schema.get("items") or {"type": "string"})
        unique = schema.get("x-kubernetes-list-type") == "set"
        return st.lists(
            items,
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
            unique=unique,
        )
    if kind == "integer":
        return st.integers(schema.get("minimum", -5), schema.get("maximum", 10_000))
    if kind == "boolean":
        return st.booleans()
    return _string(schema)
