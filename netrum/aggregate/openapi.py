"""OpenAPI 3.0/3.1 documents (JSON, or YAML with PyYAML) -> declared routes with their operationId.

Every operation of ``paths`` becomes a ``DeclaredRoute`` whose template is the server's base path plus
the path template: ``servers[].url`` (document, path item or operation level, the innermost wins;
absolute or relative URLs; ``{variables}`` replaced by their default) gives the base path, and each base
path declares the operation once. Path parameters (path-item level, overridden by operation level per
name; local ``$ref`` resolved) typed ``integer`` match only integer segments and those of ``format:
uuid`` only UUIDs, so ``/users/me`` never counts as ``/users/{user_id}`` even without a literal route.
Swagger 2.0 documents are read too (``basePath``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netrum.aggregate.routes import KIND_ANY, KIND_INT, KIND_UUID, DeclaredRoute, DeclaredRoutes
from netrum.errors import UsageError

OPERATION_KEYS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")


def load_document(path: str | Path) -> dict[str, Any]:
    """Parse a JSON or YAML document; UsageError when it cannot be read or parsed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the OpenAPI document {p}: {e.strerror or e}") from None
    doc: object
    if p.suffix.lower() in (".yaml", ".yml") or not text.lstrip().startswith("{"):
        try:
            import yaml
        except ImportError:
            raise UsageError("YAML OpenAPI documents need PyYAML (pip install pyyaml); "
                             "or give the document as JSON") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UsageError(f"{p}: not a valid YAML document: {e}") from None
    else:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise UsageError(f"{p}: not a valid JSON document: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("paths", {}), dict) \
            or not ("openapi" in doc or "swagger" in doc):
        raise UsageError(f"{p}: not an OpenAPI document (no 'openapi' version and 'paths' object)")
    return doc


def _resolve(doc: dict[str, Any], obj: Any) -> Any:
    """Follow local ``$ref`` pointers (``#/components/parameters/X``, RFC 6901 escapes)."""
    seen = 0
    while isinstance(obj, dict) and isinstance(obj.get("$ref"), str) and obj["$ref"].startswith("#/"):
        target: Any = doc
        for part in obj["$ref"][2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        obj = target
        seen += 1
        if seen > 32:
            return None
    return obj


def _base_paths(servers: Any) -> list[str] | None:
    """Base paths of a ``servers`` list ("" for the root), or None when the list is absent or empty."""
    if not isinstance(servers, list) or not servers:
        return None
    out: list[str] = []
    for s in servers:
        if not isinstance(s, dict) or not isinstance(s.get("url"), str):
            continue
        url = s["url"]
        for name, var in (s.get("variables") or {}).items():
            if isinstance(var, dict) and "default" in var:
                url = url.replace("{" + name + "}", str(var["default"]))
        path = urlsplit(url).path if "://" in url or url.startswith("//") else url.split("?", 1)[0]
        path = "/" + path.strip("/") if path.strip("/") else ""
        if path not in out:
            out.append(path)
    return out or None


def _kind(doc: dict[str, Any], param: dict[str, Any]) -> str:
    schema = _resolve(doc, param.get("schema")) if "schema" in param else param  # Swagger 2.0: inline
    if not isinstance(schema, dict):
        return KIND_ANY
    types = schema.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if types == {"integer"} or types == {"integer", "null"}:
        return KIND_INT
    if schema.get("format") == "uuid" and types <= {"string", None}:
        return KIND_UUID
    return KIND_ANY


def _path_params(doc: dict[str, Any], *levels: Any) -> tuple[tuple[str, str], ...]:
    params: dict[str, str] = {}
    for level in levels:
        for p in level or ():
            p = _resolve(doc, p)
            if isinstance(p, dict) and p.get("in") == "path" and isinstance(p.get("name"), str):
                params[p["name"]] = _kind(doc, p)
    return tuple(sorted(params.items()))


def declared_from_openapi(doc: dict[str, Any]) -> list[DeclaredRoute]:
    """One DeclaredRoute per (base path, path, method) of the document."""
    if "swagger" in doc:
        base = str(doc.get("basePath") or "").rstrip("/")
        top = [base if base.startswith("/") or not base else "/" + base]
    else:
        top = _base_paths(doc.get("servers")) or [""]
    out: list[DeclaredRoute] = []
    for template, item in (doc.get("paths") or {}).items():
        item = _resolve(doc, item)
        if not isinstance(item, dict) or not isinstance(template, str) or not template.startswith("/"):
            continue
        item_bases = _base_paths(item.get("servers")) or top
        for key in OPERATION_KEYS:
            op = item.get(key)
            if not isinstance(op, dict):
                continue
            kinds = _path_params(doc, item.get("parameters"), op.get("parameters"))
            op_id = op.get("operationId")
            for base in _base_paths(op.get("servers")) or item_bases:
                full = (base + template) if template != "/" or not base else base
                out.append(DeclaredRoute(key.upper(), full, str(op_id) if op_id else "", "openapi", kinds))
    return out


def load_openapi(path: str | Path) -> DeclaredRoutes:
    return DeclaredRoutes(declared_from_openapi(load_document(path)))
