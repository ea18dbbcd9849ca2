"""netrum.export.privacy: query masking of every request-target form, the presets, the writers."""
from __future__ import annotations

import csv
import pickle
import re
from pathlib import Path

import pytest

from netrum.counters import Counters
from netrum.export.csvfiles import TransactionWriter, transaction_row, write_endpoints, write_health
from netrum.export.privacy import Privacy, luhn_ok, make_mask, make_privacy, mask_target
from netrum.records import Transaction


@pytest.mark.parametrize(("uri", "masked"), [
    ("/plain/path", "/plain/path"),
    ("*", "*"),  # asterisk form
    ("example.com:443", "example.com:443"),  # authority form
    ("/search?q=cats&page=2", "/search?q=*&page=*"),
    ("/search?q=a&q=b&q=c", "/search?q=*&q=*&q=*"),  # repeated keys
    ("/s?flag", "/s?*"),  # an item without "=" is a value
    ("/s?flag&k=v", "/s?*&k=*"),
    ("/s?k=", "/s?k="),  # empty value: nothing to hide
    ("/s?", "/s?"),
    ("/s?a=1&&b=2", "/s?a=*&&b=*"),
    ("/s?api%5Fkey=abc%3D%3D&x=%41", "/s?api%5Fkey=*&x=*"),  # percent-encoded keys kept, values masked
    ("/s?api_key%3Dsecret", "/s?*"),  # an encoded "=" is not a separator: all of it is a value
    ("/s?k=v=w", "/s?k=*"),
    ("/p#section", "/p#*"),  # fragment
    ("/p?k=v#frag", "/p?k=*#*"),
    ("/p?k=v#", "/p?k=*#"),
    ("/a;jsessionid=ABC123/b", "/a;jsessionid=*/b"),  # path parameters
    ("/a;v=1;w=2?x=3", "/a;v=*;w=*?x=*"),
    ("http://example.com/s?q=1", "http://example.com/s?q=*"),  # absolute form
    ("http://user:pass@example.com/s?q=1", "http://*@example.com/s?q=*"),  # userinfo
    ("http://user:pass@example.com", "http://*@example.com"),
    ("https://a@b@example.com:8080/x", "https://*@example.com:8080/x"),
    ("http://example.com?q=1", "http://example.com?q=*"),
    ("/users/a@b.com/x", "/users/a@b.com/x"),  # "@" in a path is not userinfo (masks handle e-mails)
    ("/redirect?to=http://u:p@evil/", "/redirect?to=*"),
])
def test_mask_target(uri: str, masked: str) -> None:
    assert mask_target(uri) == masked


@pytest.mark.parametrize(("uri", "kept"), [
    ("/search?q=cats&page=2#f", "/search?q=cats&page=2#f"),
    ("/a;jsessionid=X", "/a;jsessionid=X"),
    ("http://user:pass@example.com/s?q=1", "http://*@example.com/s?q=1"),  # userinfo is always masked
])
def test_keep_query_values(uri: str, kept: str) -> None:
    assert mask_target(uri, keep_query_values=True) == kept
    assert make_privacy(True).uri(uri) == kept


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")


@pytest.mark.parametrize(("text", "masked"), [
    ("mail jane.doe@example.org now", "mail {email} now"),
    ("/u/jane.doe%40example.org/p", "/u/{email}/p"),
    ("a+tag@sub.example.co.uk", "{email}"),
    ("not@anemail", "not@anemail"),
])
def test_email_preset(text: str, masked: str) -> None:
    assert make_privacy(False, ["email"]).text(text) == masked


@pytest.mark.parametrize(("text", "masked"), [
    ("/pay/4111111111111111", "/pay/{card}"),
    ("/pay/4111-1111-1111-1111/x", "/pay/{card}/x"),
    ("card 4111 1111 1111 1111.", "card {card}."),
    ("/pay/4111%201111%201111%201111", "/pay/{card}"),
    ("/orders/4111111111111112", "/orders/4111111111111112"),  # fails the Luhn check: an id
    ("/t/41111111111111110000", "/t/41111111111111110000"),  # 20 digits: not a card
    ("/ids/123456789012", "/ids/123456789012"),  # 12 digits: too short
])
def test_card_preset(text: str, masked: str) -> None:
    assert make_privacy(False, ["card"]).text(text) == masked


@pytest.mark.parametrize(("text", "masked"), [
    ("from 192.168.1.20 via 10.0.0.1:80", "from {ipv4} via {ipv4}:80"),
    ("version 1.2.3.4.5", "version 1.2.3.4.5"),
    ("300.1.1.1", "300.1.1.1"),
])
def test_ipv4_preset(text: str, masked: str) -> None:
    assert make_privacy(False, ["ipv4"]).text(text) == masked


def test_user_regex_and_order() -> None:
    p = make_privacy(False, [r"acct-[0-9]+", "email"])
    assert p.uri("/x/acct-42?k=acct-43&m=a@b.org") == "/x/*?k=*&m=*"
    assert p.text("acct-7 a@b.org") == "* {email}"
    with pytest.raises(re.error):
        make_mask("(")


def test_privacy_pickles() -> None:  # workers receive it in their task
    p = make_privacy(False, ["card", "x+"])
    assert pickle.loads(pickle.dumps(p)).text("4111111111111111 xx") == "{card} *"


TX = Transaction(conn_id="C", depth=1, client_ip="192.0.2.1", client_port=1, server_ip="192.0.2.2",
                 server_port=80, request_ts_ns=1, method="GET", host="jane@example.org",
                 uri="/u/jane@example.org?token=abc", user_agent="ua jane@example.org",
                 reason="hi jane@example.org", consumer="id:0011")


def test_transaction_rows_are_masked() -> None:
    row = transaction_row(TX, "/u/{x}")
    assert "token=*" in row[12] and "abc" not in row
    assert row[-1] == "id:0011"
    masked = transaction_row(TX, "/u/jane@example.org", make_privacy(False, ["email", "ipv4"]))
    assert not any("jane" in cell or "192.0.2" in cell for cell in masked)
    assert transaction_row(TX, "/", Privacy(keep_query_values=True))[12] == "/u/jane@example.org?token=abc"
    no_consumer = transaction_row(Transaction("C", 1, "192.0.2.9", 1, "s", 2), "")
    assert no_consumer[-1] == "192.0.2.9"  # the consumer defaults to the client address


def test_writers_mask_tables_and_health(tmp_path: Path) -> None:
    p = make_privacy(False, ["email"])
    w = TransactionWriter(tmp_path / "t.csv", p)
    w.write(TX, "/u/{x}")
    w.close()
    write_endpoints(tmp_path / "e.csv", [{"host": "a@b.org", "route": "/x?k=v", "requests": 3}],
                    ("host", "route", "requests"), p)
    write_health(tmp_path / "h.csv", Counters(), {"problem_1": "/caps/a@b.org.pcap: cut", "partial": 1}, p)
    text = "".join(f.read_text() for f in tmp_path.iterdir())
    assert "@" not in text and "k=v" not in text
    rows = list(csv.reader((tmp_path / "e.csv").read_text().splitlines()))
    assert rows[1] == ["{email}", "/x?k=*", "3"]
