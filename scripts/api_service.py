"""A realistic little HTTP API (FastAPI) for route-templating tests: run with uvicorn.

    uvicorn --app-dir scripts api_service:app --port 8000     (or: python scripts/api_service.py --port 8000)

Declared routes (in the OpenAPI document at /openapi.json, each with an explicit operationId): nested ids
(``/v1/users/{user_id}/orders/{order_id}``), UUIDs (``/v1/sessions/{session_id}``), slugs
(``/v1/articles/{slug}``), content hashes, dates, literal siblings (``/v1/users/me`` beside
``/v1/users/{user_id}``, ``/v1/articles/popular`` beside ``/v1/articles/{slug}``) and versioned prefixes
(``/v1``, ``/v2``). Two routes are deliberately left out of the document (``include_in_schema=False``):
``GET /internal/debug/{key}`` and ``POST /v1/admin/reindex``.

``ROUTES`` lists every route with its template and operationId (None when undocumented), so a traffic
generator knows which route it calls.
"""
from __future__ import annotations

import argparse
import datetime
import uuid

from fastapi import FastAPI, Query, Response

app = FastAPI(title="netrum test API", version="1.0.0")

# (method, template, operationId or None when undocumented)
ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("GET", "/v1/users/me", "getCurrentUser"),
    ("GET", "/v1/users/{user_id}", "getUser"),
    ("PATCH", "/v1/users/{user_id}", "updateUser"),
    ("GET", "/v1/users/{user_id}/orders", "listUserOrders"),
    ("POST", "/v1/users/{user_id}/orders", "createUserOrder"),
    ("GET", "/v1/users/{user_id}/orders/{order_id}", "getUserOrder"),
    ("GET", "/v1/articles/popular", "listPopularArticles"),
    ("GET", "/v1/articles/{slug}", "getArticle"),
    ("GET", "/v1/articles/{slug}/comments", "listArticleComments"),
    ("GET", "/v1/sessions/{session_id}", "getSession"),
    ("DELETE", "/v1/sessions/{session_id}", "deleteSession"),
    ("GET", "/v1/files/{digest}", "getFile"),
    ("GET", "/v1/reports/{day}", "getDailyReport"),
    ("GET", "/v2/users/{user_id}", "getUserV2"),
    ("GET", "/v2/search", "search"),
    ("GET", "/v1/status", "getStatus"),
    ("GET", "/internal/debug/{key}", None),
    ("POST", "/v1/admin/reindex", None),
)


@app.get("/v1/users/me", operation_id="getCurrentUser")
def current_user() -> dict[str, object]:
    return {"id": 1, "name": "me"}


@app.get("/v1/users/{user_id}", operation_id="getUser")
def get_user(user_id: int) -> dict[str, object]:
    return {"id": user_id, "name": f"user{user_id}"}


@app.patch("/v1/users/{user_id}", operation_id="updateUser")
def update_user(user_id: int) -> dict[str, object]:
    return {"id": user_id, "updated": True}


@app.get("/v1/users/{user_id}/orders", operation_id="listUserOrders")
def list_orders(user_id: int, limit: int = Query(10)) -> list[dict[str, object]]:
    return [{"user": user_id, "order": i} for i in range(min(limit, 5))]


@app.post("/v1/users/{user_id}/orders", operation_id="createUserOrder", status_code=201)
def create_order(user_id: int) -> dict[str, object]:
    return {"user": user_id, "order": 1}


@app.get("/v1/users/{user_id}/orders/{order_id}", operation_id="getUserOrder")
def get_order(user_id: int, order_id: int) -> dict[str, object]:
    return {"user": user_id, "order": order_id}


@app.get("/v1/articles/popular", operation_id="listPopularArticles")
def popular() -> list[str]:
    return ["hello-world"]


@app.get("/v1/articles/{slug}", operation_id="getArticle")
def get_article(slug: str) -> dict[str, object]:
    return {"slug": slug, "title": slug.replace("-", " ")}


@app.get("/v1/articles/{slug}/comments", operation_id="listArticleComments")
def comments(slug: str) -> list[dict[str, object]]:
    return [{"article": slug, "text": "nice"}]


@app.get("/v1/sessions/{session_id}", operation_id="getSession")
def get_session(session_id: uuid.UUID) -> dict[str, object]:
    return {"session": str(session_id)}


@app.delete("/v1/sessions/{session_id}", operation_id="deleteSession", status_code=204)
def delete_session(session_id: uuid.UUID) -> Response:
    return Response(status_code=204)


@app.get("/v1/files/{digest}", operation_id="getFile")
def get_file(digest: str) -> dict[str, object]:
    return {"digest": digest, "size": len(digest)}


@app.get("/v1/reports/{day}", operation_id="getDailyReport")
def report(day: datetime.date) -> dict[str, object]:
    return {"day": day.isoformat(), "total": 42}


@app.get("/v2/users/{user_id}", operation_id="getUserV2")
def get_user_v2(user_id: int) -> dict[str, object]:
    return {"id": user_id, "profile": {"name": f"user{user_id}"}}


@app.get("/v2/search", operation_id="search")
def search(q: str = "") -> dict[str, object]:
    return {"q": q, "hits": []}


@app.get("/v1/status", operation_id="getStatus")
def status() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/internal/debug/{key}", include_in_schema=False)
def debug(key: str) -> dict[str, str]:
    return {"key": key}


@app.post("/v1/admin/reindex", include_in_schema=False, status_code=202)
def reindex() -> dict[str, str]:
    return {"queued": "yes"}


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
