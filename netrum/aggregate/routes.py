"""Route templating: collapse the ids in a request path into placeholders (``/users/{id}``).

The first, rule-based templater: a path segment is replaced by a typed placeholder when it is plainly an
identifier (table ``SEGMENT_RULES``, first match wins); literal segments (``/v1``, ``/me``, ``/search``)
stay as they are. The query string never takes part in the route.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

# (placeholder, test) in order; the first test that accepts a segment names it.
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z")
_INT = re.compile(r"[-+]?\d+\Z")
_HEX = re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\Z")
_TOKEN = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-]{24,}={0,2}\Z")

SEGMENT_RULES: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("{id}", _INT.match),
    ("{uuid}", _UUID.match),
    ("{date}", _DATE.match),
    ("{hash}", _HEX.match),
    ("{token}", _TOKEN.match),
)

_CACHE_MAX = 65_536


def template_segment(segment: str) -> str:
    if not segment:
        return segment
    for placeholder, test in SEGMENT_RULES:
        if test(segment):
            return placeholder
    return segment


def path_of(target: str) -> str:
    """The path of a request-target (RFC 9112 section 3.2): origin-form keeps its path, absolute-form
    loses scheme and authority, authority-form (CONNECT) and asterisk-form are returned whole."""
    if target.startswith("/"):
        path = target
    elif "://" in target[:12]:
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    else:
        return target  # "*" or host:port
    for sep in ("?", "#"):
        cut = path.find(sep)
        if cut >= 0:
            path = path[:cut]
    return path


class RouteTemplater:
    """Maps request-targets to route templates, with a bounded cache (the same paths repeat a lot)."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def route(self, method: str | None, target: str | None) -> str:
        if target is None:
            return ""
        hit = self._cache.get(target)
        if hit is not None:
            return hit
        if method == "CONNECT" or not target.startswith("/") and "://" not in target[:12]:
            route = target if method == "CONNECT" or target == "*" else template_segment(target)
        else:
            route = "/".join(template_segment(s) for s in path_of(target).split("/")) or "/"
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[target] = route
        return route


# --- Routes learned from traffic (batch mode, at the end of the run) ------------------------------------
#
# The streaming path keys everything by the rule-based route above. At the end of the run the distinct
# rule-based routes (with their request counts) are learned per (host, method): a trie of path segments
# is built, and at each position the values that vary with high cardinality are collapsed into one typed
# placeholder, their subtrees merged. The aggregator's statistics are then merged exactly into the
# learned routes and transactions.csv is rewritten (netrum.batch).

PLACEHOLDERS = frozenset(p for p, _ in SEGMENT_RULES) | {"{param}", "{overflow}"}
OVERFLOW_ROUTE = "{overflow}"


@dataclass(frozen=True, slots=True)
class LearnParams:
    """When a position of a path shape becomes a parameter.

    Literal values at one trie position are split into heavy ones (seen at least ``heavy_ratio`` times
    the median count of their literal siblings, and at least ``heavy_min`` times: they stay literal,
    like ``/users/me``) and light ones; the light ones are collapsed into a placeholder when there are at
    least ``min_variants`` of them and they are mostly rare (distinct values / requests >=
    ``min_uniqueness``): resource names (``/users``, ``/orders``) are few and each requested often. A
    smaller set (``small_variants``) is collapsed too when nearly every request brought a new value
    (``small_uniqueness``) and no sibling is heavy (a heavy sibling says: a position of resource names).
    """

    min_variants: int = 10
    min_uniqueness: float = 0.1
    small_variants: int = 5
    small_uniqueness: float = 0.75
    heavy_ratio: float = 8.0
    heavy_min: int = 5


def segment_type(segment: str) -> str:
    """The placeholder a value would get if it is a parameter: a rule's type, else ``{param}``."""
    if segment in PLACEHOLDERS:
        return segment
    typed = template_segment(segment)
    return typed if typed != segment else "{param}"


class _Node:
    __slots__ = ("children", "ends", "requests")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ends: list[tuple[str, int]] = []  # (rule-based route, requests) ending at this node
        self.requests = 0

    def absorb(self, other: _Node) -> None:
        self.requests += other.requests
        self.ends.extend(other.ends)
        for seg, child in other.children.items():
            mine = self.children.get(seg)
            if mine is None:
                self.children[seg] = child
            else:
                mine.absorb(child)


def _collapse(node: _Node, params: LearnParams) -> None:
    literals = [(seg, child) for seg, child in node.children.items() if seg not in PLACEHOLDERS]
    if len(literals) >= min(params.min_variants, params.small_variants):
        counts = sorted(child.requests for _, child in literals)
        median = counts[len(counts) // 2]
        floor = max(params.heavy_min, params.heavy_ratio * median)
        light = [(seg, child) for seg, child in literals if child.requests < floor]
        light_requests = sum(child.requests for _, child in light)
        uniqueness = len(light) / light_requests if light_requests else 0.0
        if len(light) >= params.min_variants and uniqueness >= params.min_uniqueness \
                or len(light) == len(literals) >= params.small_variants and uniqueness >= params.small_uniqueness:
            members = light + [(seg, child) for seg, child in node.children.items()
                               if seg in PLACEHOLDERS and seg != OVERFLOW_ROUTE]
            types = {segment_type(seg) for seg, _ in members}
            name = types.pop() if len(types) == 1 else "{param}"
            merged = _Node()
            for seg, child in sorted(members, key=lambda m: m[0]):
                del node.children[seg]
                merged.absorb(child)
            existing = node.children.get(name)
            if existing is not None:
                merged.absorb(existing)
            node.children[name] = merged
    for child in node.children.values():
        _collapse(child, params)


def _templates(node: _Node, prefix: str, out: dict[str, str]) -> None:
    for route, _ in node.ends:
        out[route] = prefix or "/"
    for seg, child in node.children.items():
        _templates(child, f"{prefix}/{seg}" if prefix or seg else "/", out)


def learn_templates(routes: dict[str, int], params: LearnParams = LearnParams()) -> dict[str, str]:
    """Learned template of each rule-based route of one (host, method): {route: template}.

    ``routes`` maps each distinct rule-based route to its request count. Routes that are not paths
    (``*``, CONNECT authorities) map to themselves. Deterministic: the result depends only on the
    counts, not on their order (so --workers gives the same routes).
    """
    root = _Node()
    out: dict[str, str] = {}
    for route, count in routes.items():
        if not route.startswith("/"):
            out[route] = route
            continue
        node = root
        node.requests += count
        for seg in route[1:].split("/"):
            nxt = node.children.get(seg)
            if nxt is None:
                nxt = node.children[seg] = _Node()
            node = nxt
            node.requests += count
        node.ends.append((route, count))
    _collapse(root, params)
    for seg, child in root.children.items():
        _templates(child, "/" + seg, out)
    return out


# --- Routes the user declares: a routes file or an OpenAPI document (netrum.aggregate.openapi) ----------

_PARAM_WHOLE = re.compile(r"\{[^{}/]+\}\Z|:[A-Za-z_]\w*\Z|<(?:[A-Za-z_]\w*:)?[A-Za-z_]\w*>\Z")
_PARAM_PART = re.compile(r"\{[^{}/]+\}")
KIND_ANY, KIND_INT, KIND_UUID = "any", "int", "uuid"
# order in which parameter alternatives are tried at one position (literals always come first)
_KIND_ORDER = {"regex": 0, KIND_INT: 1, KIND_UUID: 2, KIND_ANY: 3}
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "CONNECT", "QUERY")


@dataclass(frozen=True, slots=True)
class DeclaredRoute:
    method: str  # upper case; "*" for any method
    template: str  # full path template, server base path included: "/api/v1/users/{user_id}"
    operation_id: str = ""
    source: str = "routes"  # "routes" (a --routes file) or "openapi"
    param_kinds: tuple[tuple[str, str], ...] = ()  # (parameter name, KIND_*) for typed parameters


def _norm_path(path: str) -> list[str]:
    """Segments of a path with one trailing slash ignored (``/a/b/`` is ``/a/b``), percent-decoded."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return [unquote(s, errors="surrogateescape") for s in path[1:].split("/")] if path != "/" else []


def _param_name(seg: str) -> str:
    if seg.startswith("{"):
        return seg[1:-1]
    if seg.startswith(":"):
        return seg[1:]
    return seg[1:-1].rsplit(":", 1)[-1]


class _PNode:
    __slots__ = ("literal", "ops", "params")

    def __init__(self) -> None:
        self.literal: dict[str, _PNode] = {}
        self.params: list[tuple[int, str, re.Pattern[str] | None, _PNode]] = []  # (order, key, regex, node)
        self.ops: dict[str, DeclaredRoute] = {}


def _seg_matches(kind: str, regex: re.Pattern[str] | None, seg: str) -> bool:
    if not seg:
        return False
    if kind == KIND_ANY:
        return True
    if kind == KIND_INT:
        return seg == "{id}" or bool(_INT.match(seg))
    if kind == KIND_UUID:
        return seg == "{uuid}" or bool(_UUID.match(seg))
    return regex is not None and regex.fullmatch(seg) is not None


class DeclaredRoutes:
    """Declared path templates, matched per method with literal segments before parameters.

    Requests are matched by their rule-based route (so the aggregator's keys map exactly): a
    placeholder segment such as ``{id}`` matches any parameter (an integer parameter only ``{id}`` or an
    integer, a uuid parameter only ``{uuid}`` or a UUID), never a literal. At each position a literal
    segment is tried first, then parameters (partial templates such as ``{name}.json``, then typed, then
    untyped), with backtracking; one trailing slash is ignored; segments are compared percent-decoded.
    A route with method "*" (a routes-file line without a method) matches any method; HEAD falls back to
    GET (RFC 9110 section 9.3.2). The first declaration of an identical (method, template) wins.
    """

    def __init__(self, routes: Iterable[DeclaredRoute] = ()) -> None:
        self._root = _PNode()
        self.routes: list[DeclaredRoute] = []
        for r in routes:
            self.add(r)

    def __len__(self) -> int:
        return len(self.routes)

    def add(self, route: DeclaredRoute) -> None:
        kinds = dict(route.param_kinds)
        node = self._root
        for seg in _norm_path(route.template):
            if _PARAM_WHOLE.match(seg):
                kind = kinds.get(_param_name(seg), KIND_ANY)
                key = f"{{{kind}}}"
                regex = None
            elif _PARAM_PART.search(seg):
                kind = "regex"
                regex = re.compile("".join(
                    "[^/]+?" if _PARAM_PART.fullmatch(part) else re.escape(part)
                    for part in re.split(r"(\{[^{}/]+\})", seg) if part))
                key = regex.pattern
            else:
                nxt = node.literal.get(seg)
                if nxt is None:
                    nxt = node.literal[seg] = _PNode()
                node = nxt
                continue
            for _, k, _, child in node.params:
                if k == key:
                    node = child
                    break
            else:
                child = _PNode()
                node.params.append((_KIND_ORDER[kind], key, regex, child))
                node.params.sort(key=lambda p: (p[0], p[1]))
                node = child
        if route.method not in node.ops:
            node.ops[route.method] = route
            self.routes.append(route)

    def match(self, method: str, route: str) -> DeclaredRoute | None:
        """The declared route of a request (its method and rule-based route), or None."""
        if not route.startswith("/"):
            return None
        methods = (method, "GET", "*") if method == "HEAD" else (method, "*")
        return self._walk(self._root, _norm_path(route), 0, methods)

    def _walk(self, node: _PNode, segs: list[str], i: int, methods: tuple[str, ...]) -> DeclaredRoute | None:
        if i == len(segs):
            for m in methods:
                op = node.ops.get(m)
                if op is not None:
                    return op
            return None
        seg = segs[i]
        nxt = node.literal.get(seg)
        if nxt is not None:
            found = self._walk(nxt, segs, i + 1, methods)
            if found is not None:
                return found
        for order, key, regex, child in node.params:
            if _seg_matches(key[1:-1] if order else "regex", regex, seg):
                found = self._walk(child, segs, i + 1, methods)
                if found is not None:
                    return found
        return None


def parse_routes_file(text: str) -> list[DeclaredRoute]:
    """Routes-file lines: ``[METHOD] /path/{param}/... [operation-name]``; ``#`` starts a comment.

    Parameters are whole segments ``{name}``, ``:name`` or ``<name>`` (``<int:name>``), or parts of a
    segment (``{name}.json``). Raises ValueError naming the first bad line.
    """
    out: list[DeclaredRoute] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        method = "*"
        if words[0].upper() in HTTP_METHODS or words[0] == "*":
            method = words.pop(0).upper()
        if not words or not words[0].startswith("/") or len(words) > 2:
            raise ValueError(f"line {n}: expected '[METHOD] /path [name]', got {raw.strip()!r}")
        kinds = tuple((_param_name(s), KIND_INT) for s in words[0].split("/") if s.startswith("<int:"))
        out.append(DeclaredRoute(method, words[0], words[1] if len(words) > 1 else "", "routes", kinds))
    return out


# --- Putting it together at the end of a run -----------------------------------------------------------

RouteKey = tuple[str, str, str]  # (host, method, route)
ROUTES_COLUMNS = ("host", "method", "route", "operation_id", "source", "merged_paths", "requests", "examples")
COVERAGE_COLUMNS = ("kind", "host", "method", "route", "operation_id", "requests")
EXAMPLES = 3


@dataclass
class RouteResolution:
    """Where every rule-based endpoint goes: ``mapping`` (host, method, rule route) -> (route,
    operation_id); ``report`` the rows of routes.csv; ``coverage`` those of api_coverage.csv (empty
    without declared routes)."""

    mapping: dict[RouteKey, tuple[str, str]]
    report: list[dict[str, object]]
    coverage: list[dict[str, object]]
    overflowed: int = 0  # rule-based routes sent to the overflow bucket

    @property
    def identity(self) -> bool:
        return all(k[2] == v[0] and not v[1] for k, v in self.mapping.items())


def resolve_routes(counts: dict[RouteKey, int], declared: DeclaredRoutes | None = None,
                   budget: int | None = 500, learn: bool = True,
                   params: LearnParams = LearnParams()) -> RouteResolution:
    """Declared routes first, then learning over the rest, then the per-host budget.

    ``counts``: requests per rule-based endpoint. With a ``budget``, a host keeps at most that many
    routes: the busiest non-declared ones are kept and the rest go to one ``{overflow}`` route per
    method (counted in the budget). Declared routes are never overflowed.
    """
    mapping: dict[RouteKey, tuple[str, str]] = {}
    source: dict[RouteKey, str] = {}
    rest: dict[tuple[str, str], dict[str, int]] = {}
    for key, n in counts.items():
        host, method, route = key
        op = declared.match(method, route) if declared is not None else None
        if op is not None:
            mapping[key] = (op.template, op.operation_id)
            source[key] = op.source
        else:
            rest.setdefault((host, method), {})[route] = n
    for (host, method), routes in rest.items():
        learned = learn_templates(routes, params) if learn else {r: r for r in routes}
        for route, template in learned.items():
            key = (host, method, route)
            mapping[key] = (template, "")
            source[key] = "learned" if template != route else "observed"
    overflowed = 0
    if budget is not None:
        overflowed = _apply_budget(counts, mapping, source, budget)
    report = _report(counts, mapping, source)
    coverage = _coverage(counts, mapping, source, declared) if declared is not None else []
    return RouteResolution(mapping, report, coverage, overflowed)


def _apply_budget(counts: dict[RouteKey, int], mapping: dict[RouteKey, tuple[str, str]],
                  source: dict[RouteKey, str], budget: int) -> int:
    per_host: dict[str, dict[tuple[str, str], int]] = {}
    declared_routes: dict[str, set[tuple[str, str]]] = {}
    for key, n in counts.items():
        host, method, _ = key
        final = (method, mapping[key][0])
        if source[key] in ("routes", "openapi"):
            declared_routes.setdefault(host, set()).add(final)
        else:
            routes = per_host.setdefault(host, {})
            routes[final] = routes.get(final, 0) + n
    overflowed = 0
    for host, routes in per_host.items():
        room = max(1, budget - len(declared_routes.get(host, ())))
        if len(routes) <= room:
            continue
        ranked = sorted(routes.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = min(room, len(ranked))
        while keep > 0 and keep + len({m for (m, _), _ in ranked[keep:]}) > room:
            keep -= 1
        dropped = {final for final, _ in ranked[keep:]}
        for key in counts:
            if key[0] == host and source[key] not in ("routes", "openapi") \
                    and (key[1], mapping[key][0]) in dropped:
                mapping[key] = (OVERFLOW_ROUTE, "")
                source[key] = "overflow"
                overflowed += 1
    return overflowed


def _report(counts: dict[RouteKey, int], mapping: dict[RouteKey, tuple[str, str]],
            source: dict[RouteKey, str]) -> list[dict[str, object]]:
    groups: dict[tuple[str, str, str, str], list[tuple[str, int, str]]] = {}
    for key, n in counts.items():
        route, op = mapping[key]
        groups.setdefault((key[0], key[1], route, op), []).append((key[2], n, source[key]))
    rows: list[dict[str, object]] = []
    for (host, method, route, op), members in groups.items():
        members.sort(key=lambda m: (-m[1], m[0]))
        sources = {s for _, _, s in members}
        src = "learned" if sources == {"learned", "observed"} else sources.pop() if len(sources) == 1 \
            else "/".join(sorted(sources))
        rows.append({
            "host": host, "method": method, "route": route, "operation_id": op, "source": src,
            "merged_paths": len(members), "requests": sum(m[1] for m in members),
            "examples": " ".join(m[0] for m in members[:EXAMPLES]),
        })
    rows.sort(key=lambda r: (r["host"], -int(r["requests"]), r["method"], r["route"]))  # type: ignore[call-overload]
    return rows


def _coverage(counts: dict[RouteKey, int], mapping: dict[RouteKey, tuple[str, str]],
              source: dict[RouteKey, str], declared: DeclaredRoutes) -> list[dict[str, object]]:
    seen: dict[tuple[str, str], int] = {}
    shadow: dict[tuple[str, str, str], int] = {}
    for key, n in counts.items():
        route, _ = mapping[key]
        if source[key] in ("routes", "openapi"):
            op = declared.match(key[1], key[2])
            assert op is not None
            k = (op.method, op.template)
            seen[k] = seen.get(k, 0) + n
        else:
            sk = (key[0], key[1], route)
            shadow[sk] = shadow.get(sk, 0) + n
    rows: list[dict[str, object]] = []
    for r in declared.routes:
        n = seen.get((r.method, r.template), 0)
        rows.append({"kind": "documented" if n else "zombie", "host": "", "method": r.method,
                     "route": r.template, "operation_id": r.operation_id, "requests": n})
    for (host, method, route), n in sorted(shadow.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append({"kind": "shadow", "host": host, "method": method, "route": route, "operation_id": "",
                     "requests": n})
    return rows
