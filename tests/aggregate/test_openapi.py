"""OpenAPI documents -> declared routes: servers base paths, path-level parameters, $ref, YAML, Swagger 2."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netrum.aggregate.openapi import declared_from_openapi, load_document, load_openapi
from netrum.aggregate.routes import DeclaredRoutes
from netrum.errors import UsageError

DOC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "servers": [{"url": "https://api.example.com/{base}", "variables": {"base": {"default": "api/v1"}}},
                {"url": "/"}],
    "components": {"parameters": {"UserId": {"name": "user_id", "in": "path", "required": True,
                                             "schema": {"type": "integer"}}}},
    "paths": {
        "/users/me": {"get": {"operationId": "me"}},
        "/users/{user_id}": {
            "parameters": [{"$ref": "#/components/parameters/UserId"}],
            "get": {"operationId": "getUser"},
            "delete": {"operationId": "deleteUser"},
        },
        "/users/{user_id}/avatar": {
            "parameters": [{"$ref": "#/components/parameters/UserId"}],
            "put": {"operationId": "putAvatar",
                    "parameters": [{"name": "user_id", "in": "path", "schema": {"type": "string"}}]},
        },
        "/sessions/{sid}": {"get": {"operationId": "getSession", "parameters": [
            {"name": "sid", "in": "path", "schema": {"type": "string", "format": "uuid"}}]}},
        "/legacy/items": {"servers": [{"url": "/old"}], "get": {"operationId": "legacyItems"}},
        "/files/{name}.{ext}": {"get": {}},
    },
}


def _routes(doc: dict[str, Any] = DOC) -> DeclaredRoutes:
    return DeclaredRoutes(declared_from_openapi(doc))


def _op(routes: DeclaredRoutes, method: str, route: str) -> str | None:
    hit = routes.match(method, route)
    return None if hit is None else hit.operation_id or hit.template


def test_server_base_paths_are_honoured() -> None:
    r = _routes()
    assert _op(r, "GET", "/api/v1/users/{id}") == "getUser"
    assert _op(r, "GET", "/users/{id}") == "getUser"  # the relative server "/": no base path
    assert _op(r, "GET", "/v1/users/{id}") is None
    hit = r.match("GET", "/api/v1/users/{id}")
    assert hit is not None and hit.template == "/api/v1/users/{user_id}" and hit.source == "openapi"


def test_path_item_servers_override_the_document_servers() -> None:
    r = _routes()
    assert _op(r, "GET", "/old/legacy/items") == "legacyItems"
    assert _op(r, "GET", "/api/v1/legacy/items") is None


def test_literal_before_parameter_and_typed_path_level_parameters() -> None:
    r = _routes()
    assert _op(r, "GET", "/api/v1/users/me") == "me"
    assert _op(r, "DELETE", "/api/v1/users/me") is None  # user_id is an integer (path-level, via $ref)
    assert _op(r, "DELETE", "/api/v1/users/{id}") == "deleteUser"
    assert _op(r, "PUT", "/api/v1/users/bob/avatar") == "putAvatar"  # operation level overrides: a string


def test_methods_and_uuid_parameters() -> None:
    r = _routes()
    assert _op(r, "POST", "/api/v1/users/{id}") is None
    assert _op(r, "HEAD", "/api/v1/users/{id}") == "getUser"
    assert _op(r, "GET", "/sessions/{uuid}") == "getSession"
    assert _op(r, "GET", "/sessions/{id}") is None


def test_trailing_slash_and_percent_encoding() -> None:
    doc = {"openapi": "3.0.3", "paths": {"/r\u00e9sum\u00e9s/{id}": {"get": {"operationId": "cv"}}}}
    r = _routes(doc)
    assert _op(r, "GET", "/r%C3%A9sum%C3%A9s/{id}/") == "cv"
    assert _op(r, "GET", "/r%c3%a9sum%c3%a9s/abc") == "cv"


def test_partial_segment_templates_and_missing_operation_id() -> None:
    r = _routes()
    assert _op(r, "GET", "/files/report.pdf") == "/files/{name}.{ext}"
    assert _op(r, "GET", "/files/report") is None


def test_json_and_yaml_files(tmp_path: Path) -> None:
    js = tmp_path / "spec.json"
    js.write_text(json.dumps(DOC))
    assert _op(load_openapi(js), "GET", "/api/v1/users/me") == "me"
    yaml = pytest.importorskip("yaml")
    ym = tmp_path / "spec.yaml"
    ym.write_text(yaml.safe_dump(DOC))
    assert _op(load_openapi(ym), "GET", "/api/v1/users/{id}") == "getUser"


def test_swagger2_base_path() -> None:
    doc = {"swagger": "2.0", "basePath": "/v2", "paths": {"/pets/{petId}": {"get": {
        "operationId": "getPet", "parameters": [{"name": "petId", "in": "path", "type": "integer"}]}}}}
    r = _routes(doc)
    assert _op(r, "GET", "/v2/pets/{id}") == "getPet"
    assert _op(r, "GET", "/v2/pets/fido") is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"info": {}}', "a: [1,"])
def test_bad_documents_are_usage_errors(tmp_path: Path, text: str) -> None:
    p = tmp_path / ("spec.yaml" if text.startswith("a:") else "spec.json")
    p.write_text(text)
    with pytest.raises(UsageError):
        load_document(p)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_document(tmp_path / "nope.json")
