"""Route templating: collapse the ids in a request path into placeholders (``/users/{id}``).

The first, rule-based templater: a path segment is replaced by a typed placeholder when it is plainly an
identifier (table ``SEGMENT_RULES``, first match wins); literal segments (``/v1``, ``/me``, ``/search``)
stay as they are. The query string never takes part in the route.
"""
from __future__ import annotations

import re
from collections.abc import Callable

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
