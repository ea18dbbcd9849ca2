"""Recorded requests for synthetic monitoring: the requests netrum saw, as a HAR 1.2 log and a Postman
collection v2.1, so a synthetic monitor can replay real traffic.

netrum keeps no request headers beyond Host, User-Agent and Content-Type (credentials, cookies and bodies
are never recorded), so that is what is exported; query-string values stay masked unless the run was made
with ``--keep-query-values``. The URL scheme is ``http`` (netrum decodes cleartext HTTP only); the host is
the Host header, else the server's address and port. Request bodies were never kept: a POST is exported
without its body (``bodySize`` says how large it was).

HAR timings come from the four packet timestamps: ``send`` = request first to last byte, ``wait`` = TTFB
(request last byte to response first byte), ``receive`` = response first to last byte; ``time`` is their
sum (= ``duration_ms``). Requests without a response are not exported (HAR needs a response and timings).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from netrum import __version__
from netrum.report.runs import TxRow
from netrum.report.slo import matches

POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


@dataclass(frozen=True, slots=True)
class RequestFilter:
    routes: tuple[str, ...] = ()  # "[METHOD:]ROUTE"; any of them
    statuses: tuple[str, ...] = ()  # "200", "5xx", "404"; any of them
    since_s: float | None = None  # request_ts >= since
    until_s: float | None = None  # request_ts < until

    def accepts(self, t: TxRow) -> bool:
        if self.routes and not any(matches(r, t) for r in self.routes):
            return False
        if self.statuses and not any(_status_matches(s, t.status) for s in self.statuses):
            return False
        ts = t.request_ts_s
        if self.since_s is not None and (ts is None or ts < self.since_s):
            return False
        return not (self.until_s is not None and (ts is None or ts >= self.until_s))


_STATUS_RE = re.compile(r"^(?:[1-5]\d\d|[1-5]xx)$", re.IGNORECASE)


def parse_status(text: str) -> str:
    """'200' or '5xx'; ValueError otherwise."""
    if not _STATUS_RE.match(text.strip()):
        raise ValueError(f"--status {text!r}: expected a status (404) or a class (5xx)")
    return text.strip().lower()


def _status_matches(spec: str, status: int | None) -> bool:
    if status is None:
        return False
    if spec.endswith("xx"):
        return status // 100 == int(spec[0])
    return status == int(spec)


def parse_time(text: str) -> float:
    """Epoch seconds, or ISO 8601 (a time without zone is UTC); ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def exportable(transactions: Iterable[TxRow], f: RequestFilter) -> list[TxRow]:
    """The filtered requests that have a response and all four timestamps, in request order."""
    out = [t for t in transactions if t.status is not None and t.request_ts_s is not None
           and t.request_end_ts_s is not None and t.response_ts_s is not None
           and t.response_end_ts_s is not None and f.accepts(t)]
    out.sort(key=lambda t: t.request_ts_s or 0.0)
    return out


def url_of(t: TxRow) -> str:
    if t.uri.lower().startswith(("http://", "https://")):
        return t.uri
    path = t.uri if t.uri.startswith("/") else "/" + t.uri
    return f"http://{t.host}{path}"


def query_items(uri: str) -> list[tuple[str, str]]:
    """(name, value) pairs of the query string as written (masked values stay '*'); no decoding."""
    _, sep, query = uri.partition("?")
    if not sep:
        return []
    query = query.split("#", 1)[0]
    out = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            out.append((name, value))
    return out


def request_headers(t: TxRow) -> list[tuple[str, str]]:
    h = [("Host", t.host)]
    if t.user_agent:
        h.append(("User-Agent", t.user_agent))
    if t.request_content_type:
        h.append(("Content-Type", t.request_content_type))
    return h


def _iso(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(a: float | None, b: float | None) -> float:
    return round(max(0.0, (b or 0.0) - (a or 0.0)) * 1000.0, 3)


def har_entry(t: TxRow) -> dict[str, object]:
    send = _ms(t.request_ts_s, t.request_end_ts_s)
    wait = _ms(t.request_end_ts_s, t.response_ts_s)
    receive = _ms(t.response_ts_s, t.response_end_ts_s)
    body = t.response_body_bytes if t.response_body_bytes is not None else -1
    resp_headers = [{"name": "Content-Type", "value": t.response_content_type}] if t.response_content_type else []
    return {
        "startedDateTime": _iso(t.request_ts_s or 0.0),
        "time": round(send + wait + receive, 3),
        "request": {
            "method": t.method,
            "url": url_of(t),
            "httpVersion": t.version or "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": n, "value": v} for n, v in request_headers(t)],
            "queryString": [{"name": n, "value": v} for n, v in query_items(t.uri)],
            "headersSize": t.request_header_bytes if t.request_header_bytes is not None else -1,
            "bodySize": t.request_body_bytes if t.request_body_bytes is not None else -1,
        },
        "response": {
            "status": t.status,
            "statusText": t.reason,
            "httpVersion": t.response_version or t.version or "HTTP/1.1",
            "cookies": [],
            "headers": resp_headers,
            "content": {"size": max(body, 0), "mimeType": t.response_content_type or "x-unknown"},
            "redirectURL": "",
            "headersSize": t.response_header_bytes if t.response_header_bytes is not None else -1,
            "bodySize": body,
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": send, "wait": wait,
                    "receive": receive},
        "serverIPAddress": t.server_ip,
        "connection": t.connection,
        "comment": f"route {t.method} {t.route}",
    }


def to_har(rows: Sequence[TxRow]) -> dict[str, object]:
    return {"log": {
        "version": "1.2",
        "creator": {"name": "netrum", "version": __version__},
        "entries": [har_entry(t) for t in rows],
        "comment": "recorded passively by netrum: only Host, User-Agent and Content-Type headers are kept; "
                   "request bodies are not recorded",
    }}


def postman_url(t: TxRow) -> dict[str, object]:
    raw = url_of(t)
    scheme, _, rest = raw.partition("://")
    authority, _, _ = rest.partition("/")
    host, _, port = authority.rpartition(":") if ":" in authority and not authority.endswith("]") else (
        authority, "", "")
    path = t.uri.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    url: dict[str, object] = {
        "raw": raw, "protocol": scheme, "host": host.split("."),
        "path": [seg for seg in path.split("/") if seg],
    }
    if port:
        url["port"] = port
    q = query_items(t.uri)
    if q:
        url["query"] = [{"key": k, "value": v} for k, v in q]
    return url


def to_postman(rows: Sequence[TxRow], name: str = "netrum recorded requests") -> dict[str, object]:
    """A collection with one folder per endpoint (METHOD host route), its requests in time order."""
    folders: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for t in rows:
        folders.setdefault(t.endpoint, []).append({
            "name": f"{t.method} {t.uri}",
            "request": {
                "method": t.method,
                "header": [{"key": n, "value": v} for n, v in request_headers(t) if n != "Host"],
                "url": postman_url(t),
                "description": f"recorded {_iso(t.request_ts_s or 0.0)}: status {t.status}, "
                               f"{_ms(t.request_ts_s, t.response_end_ts_s)} ms",
            },
            "response": [],
        })
    digest = hashlib.sha256(json.dumps(sorted(folders)).encode()).hexdigest()
    pid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return {
        "info": {"_postman_id": pid, "name": name, "schema": POSTMAN_SCHEMA,
                 "description": "Requests recorded passively by netrum, grouped by route."},
        "item": [{"name": f"{m} {r}" + (f" ({h})" if len({k[0] for k in folders}) > 1 else ""), "item": items}
                 for (h, m, r), items in folders.items()],
    }


def write_json(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8", errors="surrogateescape")
    tmp.replace(path)
