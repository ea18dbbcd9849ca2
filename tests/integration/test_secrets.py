"""Acceptance: secrets in the traffic never reach any file netrum writes, nor its stdout/stderr.

A capture (written with dpkt) in which requests carry `Authorization: Bearer`, `Authorization: Basic`,
`Cookie`, `X-API-Key`, API keys and tokens in query strings, passwords in bodies, an e-mail address and a
card number in paths and user agents, and responses carry `Set-Cookie` and secrets in their bodies. Every
file of the output directory and both output streams are scanned for each secret and its base64 and
percent-encoded forms. The consumer hashes must still group the requests by key, identically with
--workers 2, and trusted proxies must give the real client.
"""
from __future__ import annotations

import base64
import csv
import socket
from pathlib import Path
from urllib.parse import quote, quote_plus

import dpkt
import pytest

from netrum.http.consumer import hash_identity

from .groundtruth import RunNetrum

BEARER = "eyJhbGciOiJIUzI1NiJ9.U2VjcmV0QmVhcmVy.xK9fQzLmWv"
BASIC = "alice:Pa55w0rd-basic-77"
COOKIE = "sess9f8e7d6c5b4aCookie"
SET_COOKIE = "srv0a1b2c3d4e5fSetCookie"
KEY_A = "ak_live_AAAA1111secretA"
KEY_B = "ak_live_BBBB2222secretB"
QUERY_KEY = "qk9999secretQueryKey"
QUERY_TOKEN = "tok8888secretQueryToken"
BODY_PASSWORD = "hunter2BodyPassword"
BODY_TOKEN = "respBodyToken31337"
EMAIL = "jane.doe@example.org"
CARD = "4111111111111111"  # passes the Luhn check
CARD_DASHED = "4111-1111-1111-1111"
CREDENTIALS = [BEARER, BASIC, COOKIE, SET_COOKIE, KEY_A, KEY_B, QUERY_KEY, QUERY_TOKEN, BODY_PASSWORD,
               BODY_TOKEN]
PERSONAL = [EMAIL, CARD, CARD_DASHED]
SALT = "fixed-test-salt"
SERVER = "10.0.0.80"
PROXY_NET = "10.9.9.0/24"


def forms(secret: str) -> set[str]:
    """The secret as sent and as it could be re-encoded: base64 (Basic), percent-encoded (targets)."""
    b = secret.encode()
    return {secret, base64.b64encode(b).decode(), quote(secret, safe=""), quote_plus(secret),
            quote(secret, safe="@:")}


def _ip(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def _frame(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535, data=data)
    ip = dpkt.ip.IP(src=_ip(src), dst=_ip(dst), p=6, ttl=64, data=tcp)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(ip)


def _connection(client: str, cport: int, exchanges: list[tuple[bytes, bytes]], t: float) -> list[tuple[float, bytes]]:
    """Handshake, the exchanges one after another (requests split in two segments), FIN both ways."""
    syn, ack_f, psh, fin = 0x02, 0x10, 0x08, 0x01
    c, s = 1000, 5000
    out = [(t, _frame(client, SERVER, cport, 80, c, 0, syn)),
           (t + 0.0001, _frame(SERVER, client, 80, cport, s, c + 1, syn | ack_f)),
           (t + 0.0002, _frame(client, SERVER, cport, 80, c + 1, s + 1, ack_f))]
    c += 1
    s += 1
    t += 0.001
    for req, resp in exchanges:
        half = len(req) // 2
        for part in (req[:half], req[half:]):
            out.append((t, _frame(client, SERVER, cport, 80, c, s, psh | ack_f, part)))
            c += len(part)
            t += 0.0001
        t += 0.002
        out.append((t, _frame(SERVER, client, 80, cport, s, c, psh | ack_f, resp)))
        s += len(resp)
        t += 0.001
    out.append((t, _frame(client, SERVER, cport, 80, c, s, fin | ack_f)))
    out.append((t + 0.0001, _frame(SERVER, client, 80, cport, s, c + 1, fin | ack_f)))
    out.append((t + 0.0002, _frame(client, SERVER, cport, 80, c + 1, s + 1, ack_f)))
    return out


def _request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: api.example.test", *(f"{k}: {v}" for k, v in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _response(status: int, body: bytes = b"{}", extra: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", *(f"{k}: {v}" for k, v in extra),
             f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_capture(path: Path) -> None:
    ua_mail = f"Mozilla/5.0 (contact {EMAIL}; card {CARD})"
    key_a = [("X-API-Key", KEY_A)]
    key_b = [("X-API-Key", KEY_B)]
    conns = [
        # Key A from two client addresses: 5 requests, 2 of them errors.
        ("192.0.2.10", 40001, [
            (_request("GET", f"/v1/items?api_key={QUERY_KEY}&token={QUERY_TOKEN}", key_a), _response(200)),
            (_request("GET", f"/v1/users/{quote(EMAIL, safe='')}/profile", key_a + [("User-Agent", ua_mail)]),
             _response(404)),
            (_request("POST", "/v1/login", key_a + [("Content-Type", "application/x-www-form-urlencoded")],
                      f"user=alice&password={BODY_PASSWORD}".encode()),
             _response(200, f'{{"token":"{BODY_TOKEN}"}}'.encode(), [("Set-Cookie", f"sid={SET_COOKIE}; HttpOnly")])),
        ]),
        ("192.0.2.11", 40002, [
            (_request("GET", f"/v1/pay/{CARD_DASHED}/status", key_a), _response(500)),
            (_request("GET", f"/v1/pay/{CARD}", key_a + [("Cookie", f"session={COOKIE}")]), _response(200)),
        ]),
        # Key B: 3 requests, with bearer and basic credentials too.
        ("192.0.2.12", 40003, [
            (_request("GET", "/v1/orders/7", key_b + [("Authorization", f"Bearer {BEARER}")]), _response(200)),
            (_request("GET", "/v1/orders/8", key_b + [("Authorization",
                                                       "Basic " + base64.b64encode(BASIC.encode()).decode())]),
             _response(401)),
            (_request("GET", f"/v1/search?q={quote(EMAIL)}&token={QUERY_TOKEN}#frag", key_b), _response(200)),
        ]),
        # No key: by address, or behind the trusted proxy (Forwarded, X-Forwarded-For), or a spoofer.
        ("192.0.2.13", 40004, [
            (_request("GET", f"/v1/items?token={QUERY_TOKEN}", [("Cookie", f"session={COOKIE}")]), _response(200)),
        ]),
        ("10.9.9.9", 40005, [
            (_request("GET", "/v1/items", [("X-Forwarded-For", "198.51.100.23, 10.9.9.8")]), _response(200)),
            (_request("GET", "/v1/items", [("Forwarded", 'for="[2001:db8::7]:4711";proto=https')]), _response(503)),
        ]),
        ("192.0.2.66", 40006, [
            (_request("GET", "/v1/items", [("X-Forwarded-For", "198.51.100.99")]), _response(200)),
        ]),
    ]
    packets: list[tuple[float, bytes]] = []
    for i, (client, port, exchanges) in enumerate(conns):
        packets += _connection(client, port, exchanges, 1_700_000_000.0 + i * 0.05)
    packets.sort(key=lambda p: p[0])
    with path.open("wb") as fh:
        w = dpkt.pcap.Writer(fh)
        for ts, frame in packets:
            w.writepkt(frame, ts=ts)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "secrets.pcap"
    build_capture(path)
    return path


def _run(run_netrum: RunNetrum, capture: Path, out: Path, *options: str) -> tuple[str, dict[str, str]]:
    proc = run_netrum(["analyze", capture, "--out", out, *options])
    assert proc.returncode == 0, proc.stderr
    files = {p.name: p.read_text(encoding="utf-8", errors="surrogateescape") for p in sorted(out.rglob("*"))
             if p.is_file()}
    return proc.stdout + proc.stderr, files


def _leaks(secrets: list[str], streams: str, files: dict[str, str]) -> list[str]:
    return [f"{form!r} in {where}" for s in secrets for form in forms(s)
            for where, text in [("stdout/stderr", streams), *files.items()] if form in text]


def _consumers(files: dict[str, str]) -> dict[str, dict[str, str]]:
    return {r["consumer"]: r for r in csv.DictReader(files["consumers.csv"].splitlines())}


def test_default_options_write_no_credential(run_netrum: RunNetrum, capture: Path, tmp_path: Path) -> None:
    streams, files = _run(run_netrum, capture, tmp_path / "out")
    assert {"transactions.csv", "endpoints.csv", "consumers.csv", "health.csv"} <= set(files)
    assert not _leaks(CREDENTIALS, streams, files)
    tx = list(csv.DictReader(files["transactions.csv"].splitlines()))
    assert len(tx) == 12
    uris = {r["uri"] for r in tx}
    assert "/v1/items?api_key=*&token=*" in uris and "/v1/search?q=*&token=*#*" in uris
    # Personal data is masked only on request (--mask): here it is still there, so the scan does see it.
    assert _leaks([EMAIL, CARD_DASHED], streams, files)
    # No identity header named: consumers are client addresses (proxy headers ignored: none trusted).
    assert set(_consumers(files)) == {"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "10.9.9.9",
                                      "192.0.2.66"}


def test_consumer_header_and_masks_write_no_secret(run_netrum: RunNetrum, capture: Path, tmp_path: Path) -> None:
    options = ("--consumer-header", "X-API-Key", "--mask", "email", "--mask", "card")
    streams, files = _run(run_netrum, capture, tmp_path / "out", *options)
    assert not _leaks(CREDENTIALS + PERSONAL, streams, files)
    consumers = _consumers(files)
    ids = {c: r for c, r in consumers.items() if c.startswith("id:")}
    # A random salt per run: the ids are unknown, but the grouping is exact.
    assert sorted((int(r["requests"]), int(r["errors_4xx"]), int(r["errors_5xx"])) for r in ids.values()) == \
        [(3, 1, 0), (5, 1, 1)]
    assert {"192.0.2.13", "10.9.9.9", "192.0.2.66"} == set(consumers) - set(ids)
    assert "{email}" in files["transactions.csv"] and "{card}" in files["transactions.csv"]
    assert "Consumers with the most errors" in streams


def test_fixed_salt_is_stable_and_workers_merge_exactly(run_netrum: RunNetrum, capture: Path,
                                                        tmp_path: Path) -> None:
    options = ("--consumer-header", "X-API-Key", "--consumer-salt", SALT, "--trust-proxy", PROXY_NET,
               "--mask", "email", "--mask", "card", "--quiet")
    _, one = _run(run_netrum, capture, tmp_path / "one", *options)
    streams, two = _run(run_netrum, capture, tmp_path / "two", "--workers", "2", *options)
    assert not _leaks(CREDENTIALS + PERSONAL, streams, two)
    for name in ("transactions.csv", "endpoints.csv", "consumers.csv"):
        assert one[name] == two[name], name
    consumers = _consumers(one)
    a, b = hash_identity(KEY_A.encode(), SALT.encode()), hash_identity(KEY_B.encode(), SALT.encode())
    assert consumers[a]["requests"] == "5" and consumers[b]["requests"] == "3"
    # Behind the trusted proxy: the first untrusted hop from the right; a spoofer's header is ignored.
    assert consumers["198.51.100.23"]["requests"] == "1"
    assert consumers["2001:db8::7"]["errors_5xx"] == "1"
    assert consumers["192.0.2.66"]["requests"] == "1" and "198.51.100.99" not in consumers
    tx = {r["uri"]: r["consumer"] for r in csv.DictReader(one["transactions.csv"].splitlines())}
    assert tx["/v1/orders/7"] == b


def test_keep_query_values_is_an_opt_in(run_netrum: RunNetrum, capture: Path, tmp_path: Path) -> None:
    streams, files = _run(run_netrum, capture, tmp_path / "out", "--keep-query-values", "--quiet")
    assert QUERY_KEY in files["transactions.csv"]
    assert not _leaks([BEARER, BASIC, COOKIE, SET_COOKIE, KEY_A, KEY_B, BODY_PASSWORD, BODY_TOKEN], streams, files)
