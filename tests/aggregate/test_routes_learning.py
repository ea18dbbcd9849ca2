"""The route learner, declared routes (routes files) and their resolution with a per-host budget."""
from __future__ import annotations

import random
import time

import pytest

from netrum.aggregate.routes import (
    OVERFLOW_ROUTE,
    DeclaredRoute,
    DeclaredRoutes,
    LearnParams,
    learn_templates,
    parse_routes_file,
    resolve_routes,
    segment_type,
)


def _slug(rng: random.Random) -> str:
    return "-".join(rng.choice(("red", "blue", "fast", "guide", "intro", "deep", "rust", "go")) for _ in range(3)) \
        + f"-{rng.choice('abcdefghij')}{rng.choice('klmnopqrst')}"


def test_high_cardinality_slugs_collapse_and_heavy_literal_sibling_stays() -> None:
    rng = random.Random(1)
    routes: dict[str, int] = {"/v1/articles/popular": 40, "/v1/articles/{id}": 3}
    for _ in range(300):
        s = _slug(rng)
        routes[f"/v1/articles/{s}"] = routes.get(f"/v1/articles/{s}", 0) + 1
        if rng.random() < 0.3:
            routes[f"/v1/articles/{s}/comments"] = 1
    learned = learn_templates(routes)
    assert learned["/v1/articles/popular"] == "/v1/articles/popular"
    assert learned["/v1/articles/{id}"] == "/v1/articles/{param}"  # an id among slugs: one parameter
    others = {v for k, v in learned.items() if k not in ("/v1/articles/popular", "/v1/articles/{id}")}
    assert others == {"/v1/articles/{param}", "/v1/articles/{param}/comments"}


def test_low_cardinality_segments_stay_literal() -> None:
    routes = {"/v1/users/me": 50, "/v1/users/{id}": 900, "/v1/users/search": 30, "/v2/users/{id}": 10,
              "/v1/orders": 200, "/v1/health": 5}
    assert learn_templates(routes) == {r: r for r in routes}


def test_resource_names_requested_often_are_not_parameters() -> None:
    """Twelve resource names, each requested many times: a route table, not an id position."""
    routes = {f"/api/{name}": 100 + i for i, name in enumerate(
        ("users", "orders", "items", "carts", "payments", "invoices", "refunds", "reviews", "tags",
         "brands", "stores", "coupons"))}
    assert learn_templates(routes) == {r: r for r in routes}


def test_literal_seen_often_relative_to_its_siblings_stays() -> None:
    routes = {f"/u/user{i:03d}x": 1 for i in range(50)}
    routes["/u/me"] = 20
    learned = learn_templates(routes)
    assert learned["/u/me"] == "/u/me"
    assert {learned[f"/u/user{i:03d}x"] for i in range(50)} == {"/u/{param}"}


def test_heavy_min_protects_nothing_when_all_are_rare() -> None:
    """heavy_min: a value seen 3 times among single hits is still a parameter value."""
    routes = {f"/t/{w}": 1 for w in ("a1b", "c2d", "e3f", "g4h", "i5j", "k6l", "m7n", "o8p", "q9r", "s0t")}
    routes["/t/zz"] = 3
    assert set(learn_templates(routes).values()) == {"/t/{param}"}


def test_small_all_unique_set_collapses_but_not_beside_heavy_siblings() -> None:
    keys = {f"/internal/debug/{w}": 1 for w in ("ab", "cd", "ef", "gh", "ij", "kl")}
    assert set(learn_templates(keys).values()) == {"/internal/debug/{param}"}
    with_heavy = {f"/v1/{w}": 1 for w in ("status", "health", "version", "ready", "metrics")}
    with_heavy.update({"/v1/users": 300, "/v1/articles": 100})
    assert learn_templates(with_heavy) == {r: r for r in with_heavy}


def test_typed_placeholder_when_every_merged_value_has_one_type() -> None:
    assert segment_type("2024-01-02") == "{date}" and segment_type("slug-x") == "{param}"
    assert segment_type("{uuid}") == "{uuid}"
    routes = {f"/r/{i}x{i}": 1 for i in range(20)}  # mixed tokens: untyped
    assert set(learn_templates(routes).values()) == {"/r/{param}"}


def test_subtrees_of_collapsed_values_merge_recursively() -> None:
    routes: dict[str, int] = {}
    for i in range(30):
        routes[f"/repos/o{i}q/r{i}z/issues"] = 1
        routes[f"/repos/o{i}q/r{i}z"] = 1
    learned = learn_templates(routes)
    assert set(learned.values()) == {"/repos/{param}/{param}/issues", "/repos/{param}/{param}"}


def test_learning_does_not_depend_on_order() -> None:
    rng = random.Random(3)
    routes = {f"/a/{_slug(rng)}/b/{_slug(rng)}": rng.randint(1, 3) for _ in range(500)}
    routes.update({"/a/x": 200, "/a/y": 1})
    items = list(routes.items())
    rng.shuffle(items)
    assert learn_templates(dict(items)) == learn_templates(routes)


def test_non_path_routes_map_to_themselves() -> None:
    assert learn_templates({"*": 2, "example.com:443": 1, "/": 4}) == {"*": "*", "example.com:443": "example.com:443",
                                                                        "/": "/"}


def test_trailing_slash_and_root() -> None:
    routes = {"/a/": 3, "/a": 2, "/": 1}
    assert learn_templates(routes) == {"/a/": "/a/", "/a": "/a", "/": "/"}


# --- declared routes ------------------------------------------------------------------------------------

def test_routes_file_parsing_and_matching() -> None:
    text = """
    # a comment
    GET /users/{id}/orders/{oid}   getOrder
    /users/me
    POST /users/:id/orders
    GET /files/<int:fid>
    GET /docs/{name}.json
    """
    declared = DeclaredRoutes(parse_routes_file(text))
    assert len(declared) == 5
    hit = declared.match("GET", "/users/{id}/orders/{id}")
    assert hit is not None and (hit.template, hit.operation_id) == ("/users/{id}/orders/{oid}", "getOrder")
    assert declared.match("DELETE", "/users/{id}/orders/{id}") is None  # per method
    assert declared.match("PATCH", "/users/me") is not None  # no method: any method
    post = declared.match("POST", "/users/{id}/orders")
    assert post is not None and post.template == "/users/:id/orders"
    assert declared.match("GET", "/files/{id}") is not None
    assert declared.match("GET", "/files/abc") is None  # <int:...> only takes integers
    doc = declared.match("GET", "/docs/intro.json")
    assert doc is not None and doc.template == "/docs/{name}.json"
    assert declared.match("GET", "/docs/intro.xml") is None


@pytest.mark.parametrize("line", ["GET", "GET users", "/a /b /c", "FETCH /x"])
def test_routes_file_bad_lines(line: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_routes_file(line)


def test_literal_beats_parameter_whatever_the_order() -> None:
    for order in (1, -1):
        routes = [DeclaredRoute("GET", "/users/{id}", "getUser"), DeclaredRoute("GET", "/users/me", "me")][::order]
        declared = DeclaredRoutes(routes)
        assert declared.match("GET", "/users/me").operation_id == "me"  # type: ignore[union-attr]
        assert declared.match("GET", "/users/{id}").operation_id == "getUser"  # type: ignore[union-attr]
        assert declared.match("GET", "/users/bob").operation_id == "getUser"  # type: ignore[union-attr]


def test_backtracking_when_the_literal_branch_lacks_the_method_or_depth() -> None:
    declared = DeclaredRoutes([DeclaredRoute("GET", "/users/me", "me"),
                               DeclaredRoute("DELETE", "/users/{id}", "del"),
                               DeclaredRoute("GET", "/users/{id}/posts", "posts")])
    assert declared.match("DELETE", "/users/me").operation_id == "del"  # type: ignore[union-attr]
    assert declared.match("GET", "/users/me/posts").operation_id == "posts"  # type: ignore[union-attr]


def test_trailing_slash_percent_encoding_head_and_placeholders() -> None:
    declared = DeclaredRoutes([DeclaredRoute("GET", "/caf\u00e9/{x}", "c"),
                               DeclaredRoute("GET", "/items/{item}/", "i")])
    assert declared.match("GET", "/caf%C3%A9/{id}").operation_id == "c"  # type: ignore[union-attr]
    assert declared.match("GET", "/items/{uuid}").operation_id == "i"  # type: ignore[union-attr]
    assert declared.match("GET", "/items/{uuid}/").operation_id == "i"  # type: ignore[union-attr]
    assert declared.match("HEAD", "/items/5").operation_id == "i"  # type: ignore[union-attr]
    assert declared.match("GET", "/items") is None
    assert declared.match("GET", "/items//") is None  # an empty segment is no parameter value
    assert declared.match("GET", "*") is None


def test_typed_parameters() -> None:
    declared = DeclaredRoutes([DeclaredRoute("GET", "/u/{n}", "int", param_kinds=(("n", "int"),)),
                               DeclaredRoute("GET", "/s/{s}", "uuid", param_kinds=(("s", "uuid"),))])
    assert declared.match("GET", "/u/{id}") is not None and declared.match("GET", "/u/42") is not None
    assert declared.match("GET", "/u/me") is None and declared.match("GET", "/u/{uuid}") is None
    assert declared.match("GET", "/s/{uuid}") is not None and declared.match("GET", "/s/{id}") is None


# --- resolution: declared first, learning, budget, reports ---------------------------------------------

def test_resolution_declared_learned_and_coverage() -> None:
    counts = {("h", "GET", "/users/{id}"): 10, ("h", "GET", "/users/me"): 4, ("h", "POST", "/debug"): 2}
    counts.update({("h", "GET", f"/blog/p{i}x"): 1 for i in range(20)})
    declared = DeclaredRoutes([DeclaredRoute("GET", "/users/{user_id}", "getUser", "openapi"),
                               DeclaredRoute("GET", "/users/me", "me", "openapi"),
                               DeclaredRoute("DELETE", "/users/{user_id}", "delUser", "openapi")])
    res = resolve_routes(counts, declared)
    assert res.mapping["h", "GET", "/users/{id}"] == ("/users/{user_id}", "getUser")
    assert res.mapping["h", "GET", "/blog/p3x"] == ("/blog/{param}", "")
    kinds = {(r["kind"], r["method"], r["route"]): r["requests"] for r in res.coverage}
    assert kinds == {("documented", "GET", "/users/{user_id}"): 10, ("documented", "GET", "/users/me"): 4,
                     ("zombie", "DELETE", "/users/{user_id}"): 0, ("shadow", "GET", "/blog/{param}"): 20,
                     ("shadow", "POST", "/debug"): 2}
    blog = next(r for r in res.report if r["route"] == "/blog/{param}")
    assert blog["source"] == "learned" and blog["merged_paths"] == 20 and blog["requests"] == 20
    assert len(str(blog["examples"]).split()) == 3


def test_budget_overflow_is_explicit_and_reported() -> None:
    names = [f"res{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    counts = {("h", "GET", f"/api/{n}"): 100 + i for i, n in enumerate(names)}  # not learnable: resource names
    counts["h", "POST", "/api/resa"] = 1
    counts["other", "GET", "/x"] = 1
    res = resolve_routes(counts, budget=10)
    per_host = {(k[0], k[1], v[0]) for k, v in res.mapping.items() if k[0] == "h"}
    assert len(per_host) <= 10
    assert ("h", "GET", OVERFLOW_ROUTE) in per_host and ("h", "POST", OVERFLOW_ROUTE) in per_host
    assert res.mapping["h", "GET", "/api/resz"] == ("/api/resz", "")  # the busiest are kept
    assert res.mapping["other", "GET", "/x"] == ("/x", "")  # the budget is per host
    over = next(r for r in res.report if r["route"] == OVERFLOW_ROUTE and r["method"] == "GET")
    assert over["source"] == "overflow" and int(over["merged_paths"]) == 26 - 8  # type: ignore[call-overload]
    assert res.overflowed == 26 - 8 + 1
    assert sum(int(r["requests"]) for r in res.report) == sum(counts.values())  # type: ignore[call-overload]


def test_budget_never_overflows_declared_routes() -> None:
    counts = {("h", "GET", f"/d{i}"): 1 for i in range(5)}
    counts.update({("h", "GET", f"/api/r{c}"): 50 for c in "abcdefghijkl"})
    declared = DeclaredRoutes([DeclaredRoute("GET", f"/d{i}") for i in range(5)])
    res = resolve_routes(counts, declared, budget=7)
    assert all(res.mapping["h", "GET", f"/d{i}"] == (f"/d{i}", "") for i in range(5))
    assert len({v for v in res.mapping.values()}) <= 7


def test_100k_distinct_ids_stay_within_the_budget_and_the_merge_is_reported() -> None:
    """100,000 distinct ids the rules do not know (short mixed tokens) under a few routes, plus enough
    distinct resource names to exceed the budget: learning collapses the ids, the overflow the rest."""
    rng = random.Random(5)
    counts: dict[tuple[str, str, str], int] = {}
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    for i in range(100_000):
        token = "".join(rng.choice(alphabet) for _ in range(8)) + f"{i}"
        route = rng.choice(("/v1/things/{}", "/v1/things/{}/parts", "/v1/owners/{}/things"))
        counts["api", "GET", route.format(token)] = 1
    for i in range(600):  # more resource names than the budget, each requested often
        counts["api", "GET", f"/v1/catalog/section{i}/index"] = 100 + i % 7
    t0 = time.perf_counter()
    res = resolve_routes(counts, budget=200)
    elapsed = time.perf_counter() - t0
    routes = {v[0] for k, v in res.mapping.items() if k[0] == "api"}
    assert len(routes) <= 200
    assert {"/v1/things/{param}", "/v1/things/{param}/parts", "/v1/owners/{param}/things",
            OVERFLOW_ROUTE} <= routes
    by_route = {r["route"]: r for r in res.report}
    assert int(by_route["/v1/things/{param}"]["merged_paths"]) > 30_000  # type: ignore[call-overload]
    assert by_route[OVERFLOW_ROUTE]["source"] == "overflow"
    assert sum(int(r["requests"]) for r in res.report) == sum(counts.values())  # type: ignore[call-overload]
    assert elapsed < 30, elapsed


def test_learning_can_be_turned_off() -> None:
    counts = {("h", "GET", f"/p/x{i}y"): 1 for i in range(50)}
    res = resolve_routes(counts, learn=False, budget=None)
    assert res.identity
    assert resolve_routes(counts, params=LearnParams(min_variants=100, small_variants=100)).identity
