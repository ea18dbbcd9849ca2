"""netrum/_csvrow.c (the C transactions.csv line) against the reference: csv.writer over
``transaction_row``. Skipped when the extension is not built, except on CI, where it must be."""
from __future__ import annotations

import csv
import enum
import importlib
import io
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netrum.counters import Counters
from netrum.export import csvfiles
from netrum.export.csvfiles import TransactionWriter, transaction_row
from netrum.export.privacy import Privacy, make_privacy
from netrum.records import Transaction


def _csvrow() -> ModuleType:
    return pytest.importorskip("netrum._csvrow", reason="the C accelerator netrum._csvrow is not built")


def reference(tx: Any, route: Any, keep_query_values: bool = False) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(transaction_row(tx, route, Privacy(keep_query_values=keep_query_values)))
    return out.getvalue()


def c_line(tx: Any, route: Any, keep_query_values: bool = False) -> str:
    line: str = _csvrow().transaction_line(tx, route, keep_query_values)
    return line


def same_outcome(tx: Any, route: Any, keep_query_values: bool = False) -> None:
    """Equal lines, or the same exception type from both paths."""
    try:
        want: str | type[BaseException] = reference(tx, route, keep_query_values)
    except Exception as e:  # noqa: BLE001 - the C path must fail the same way
        want = type(e)
    try:
        got: str | type[BaseException] = c_line(tx, route, keep_query_values)
    except Exception as e:  # noqa: BLE001
        got = type(e)
    assert got == want


def test_accelerator_is_built_on_ci() -> None:
    """CI proves the accelerator builds on a fresh machine: missing there is a failure, not a skip."""
    if not os.environ.get("CI"):
        pytest.skip("CI is not set: a missing accelerator only means the pure-Python path")
    importlib.import_module("netrum._csvrow")  # ImportError fails the test


# Characters that matter to csv quoting, to mask_target and to the C copy loops (latin-1 high bytes,
# BMP, astral, lone surrogates as surrogateescape decodes bytes 0x80..0xff).
_SPECIAL = ',"\r\n\t;?#@&=/:% \x00'
_ESCAPED = st.integers(0xDC80, 0xDCFF).map(chr)
_CHARS = st.one_of(
    st.sampled_from(list(_SPECIAL)),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x80, max_codepoint=0xFF),
    st.characters(min_codepoint=0x100, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
    _ESCAPED,
)
# text the file can encode (utf-8 with surrogateescape): no surrogates but the escaped bytes
TEXT = st.text(_CHARS, max_size=40)
ANY_TEXT = st.one_of(TEXT, st.text(max_size=10), st.text(st.characters(categories=["Cs"]), max_size=3))
URI = st.one_of(
    TEXT,
    st.builds(lambda p, q, f: p + q + f, st.sampled_from(["/", "/a/b", "/x;jsessionid=1/y", "*",
                                                          "http://u:p@h:80/p", "h:443", "/\xff\udcff"]),
              st.sampled_from(["", "?", "?a=1&b", "?a=&=b&&", "?q=\"x,y\"\r\n"]),
              st.sampled_from(["", "#", "#frag", "#a,b"])),
)
INT64 = st.sampled_from([0, 1, -1, 999, 1000, -999, -1000, -1001, 999_999, 1_000_000, -1_000_000,
                         2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)])
TS = st.one_of(st.none(), INT64, st.integers(), st.integers(1_500_000_000 * 10**9, 1_900_000_000 * 10**9),
               st.integers(-10**13, 10**13))
COUNT = st.one_of(st.none(), INT64, st.integers(0, 10**9), st.integers())
OPT_TEXT = st.one_of(st.none(), TEXT)


@st.composite
def transactions(draw: st.DrawFn, text: st.SearchStrategy[str] = TEXT) -> Transaction:
    opt_text = st.one_of(st.none(), text)
    return Transaction(
        conn_id=draw(text), depth=draw(st.one_of(st.integers(1, 100), INT64)),
        client_ip=draw(text), client_port=draw(st.one_of(st.integers(0, 65535), INT64)),
        server_ip=draw(text), server_port=draw(st.one_of(st.integers(0, 65535), INT64)),
        request_ts_ns=draw(TS), request_end_ts_ns=draw(TS), response_ts_ns=draw(TS),
        response_end_ts_ns=draw(TS),
        method=draw(opt_text), host=draw(opt_text), uri=draw(st.one_of(st.none(), URI)),
        version=draw(opt_text), status=draw(st.one_of(st.none(), st.integers(100, 599), INT64)),
        reason=draw(opt_text), response_version=draw(opt_text),
        request_header_bytes=draw(COUNT), request_body_bytes=draw(COUNT),
        response_header_bytes=draw(COUNT), response_body_bytes=draw(COUNT),
        request_content_type=draw(opt_text), response_content_type=draw(opt_text),
        user_agent=draw(opt_text),
        interim_statuses=tuple(draw(st.lists(st.one_of(st.integers(100, 199), INT64), max_size=4))),
        tunnel_bytes=draw(st.one_of(st.integers(0, 10**6), INT64)),
        notes=tuple(draw(st.lists(st.sampled_from(["gap_response", "resync", "midstream", "a,b", 'q"']),
                                  max_size=3))),
        consumer=draw(opt_text),
    )


@settings(max_examples=600, deadline=None)
@given(transactions(), TEXT, st.booleans())
def test_line_equals_csv_writer(tx: Transaction, route: str, keep_query_values: bool) -> None:
    assert c_line(tx, route, keep_query_values) == reference(tx, route, keep_query_values)


@settings(max_examples=200, deadline=None)
@given(transactions(ANY_TEXT), ANY_TEXT)
def test_any_code_point(tx: Transaction, route: str) -> None:
    """Lone surrogates of any value, astral characters: copied as is (the file encodes the line)."""
    assert c_line(tx, route) == reference(tx, route)


@settings(max_examples=300, deadline=None)
@given(URI, st.booleans())
def test_uri_masking(uri: str, keep_query_values: bool) -> None:
    tx = Transaction("C1", 1, "10.0.0.1", 1234, "10.0.0.2", 80, uri=uri)
    assert c_line(tx, "/r", keep_query_values) == reference(tx, "/r", keep_query_values)


def test_known_lines() -> None:
    tx = Transaction("C000001", 2, "10.0.0.1", 40000, "10.0.0.2", 80,
                     request_ts_ns=1_700_000_000_123_456_789, request_end_ts_ns=1_700_000_000_123_457_000,
                     response_ts_ns=1_700_000_000_125_000_000, response_end_ts_ns=None,
                     method="GET", host="h", uri="/s?q=secret#f", version="HTTP/1.1", status=200,
                     reason="OK", user_agent='a "b", c', interim_statuses=(100, 103),
                     notes=("gap_response", "resync"))
    want = ('1700000000.123456,1700000000.123457,1700000000.125000,,10.0.0.1,40000,10.0.0.2,80,C000001,2,'
            'GET,h,/s?q=*#*,/s,,HTTP/1.1,200,OK,,,,,,1.543,,,,"a ""b"", c",100;103,0,gap_response;resync,'
            '10.0.0.1\r\n')
    assert c_line(tx, "/s") == want == reference(tx, "/s")
    small = Transaction("C", 1, "a", 1, "b", 2, request_ts_ns=-5000, request_end_ts_ns=-1_234_567_000,
                        response_ts_ns=5, response_end_ts_ns=-123_456_000)
    line = c_line(small, "")
    assert line == reference(small, "")
    assert line.startswith("0.0000-5,-1.234567,0.000000,-.123456,")


class _Status(enum.IntEnum):
    OK = 200


class _Text(str):
    def __str__(self) -> str:
        return "not this"


class _Raises:
    def __str__(self) -> str:
        raise ValueError("no str")

    def __bool__(self) -> bool:
        raise ValueError("no bool")


@pytest.mark.parametrize("changes", [
    {"status": _Status.OK, "depth": True, "client_port": _Status.OK},
    {"host": _Text("h,x"), "uri": _Text("/a?b=c"), "method": _Text("")},
    {"uri": _Text("/plain")},
    {"notes": ["x", "y"], "interim_statuses": [100, _Status.OK]},
    {"interim_statuses": (100, 10**40), "notes": ("x", _Text("y"))},
    {"interim_statuses": tuple(range(100, 160))},  # more than the buffer of the fast path
    {"interim_statuses": (-(2**63),) * 16, "tunnel_bytes": -(2**63), "depth": -(2**63)},  # its longest
    {"interim_statuses": (-(2**63),) * 17},
    {"interim_statuses": (100, "x")},
    {"request_ts_ns": 1.5e18, "response_end_ts_ns": 1.7e18},  # fmt_ms of a float raises ValueError
    {"request_ts_ns": 1.5e18},
    {"response_ts_ns": 10**25, "request_end_ts_ns": -(10**25)},
    {"response_ts_ns": 2**63 - 1, "request_end_ts_ns": -1},  # the 64-bit subtraction overflows
    {"response_ts_ns": -(2**63), "request_end_ts_ns": 0},
    {"consumer": "", "client_ip": _Text("c,ip")},
    {"consumer": 0, "client_ip": None},
    {"user_agent": 1.25, "reason": 7},
    {"server_ip": 3.5, "conn_id": None},
    {"uri": 12},  # mask_target of an int: TypeError both ways
    {"tunnel_bytes": _Raises()},
    {"method": _Raises()},
    {"notes": None},
    {"interim_statuses": 5},
])
@pytest.mark.parametrize("keep_query_values", [False, True])
def test_unusual_values(changes: dict[str, Any], keep_query_values: bool) -> None:
    """Values of other types than the annotations (a subclass, another number type): the C line still
    equals the reference, or fails the same way."""
    _csvrow()
    base = {f: getattr(_TX, f) for f in Transaction.__dataclass_fields__}
    base.update(changes)
    same_outcome(Transaction(**base), "/r", keep_query_values)
    same_outcome(SimpleNamespace(**base), _Text("/r,"), keep_query_values)


_TX = Transaction("C000009", 1, "192.168.1.10", 51000, "192.168.1.1", 8080,
                  request_ts_ns=1_700_000_000_000_000_000, request_end_ts_ns=1_700_000_000_000_100_000,
                  response_ts_ns=1_700_000_000_002_000_000, response_end_ts_ns=1_700_000_000_003_000_000,
                  method="POST", host="api.example", uri="/v1/items?id=7", version="HTTP/1.1", status=201,
                  reason="Created", response_version="HTTP/1.1", request_header_bytes=180,
                  request_body_bytes=20, response_header_bytes=150, response_body_bytes=2,
                  request_content_type="application/json", response_content_type="application/json",
                  user_agent="curl/8.0", consumer="id:abc")


class _SubTx(Transaction):
    __slots__ = ()


def test_subclass_and_duck_typed_objects() -> None:
    base = {f: getattr(_TX, f) for f in Transaction.__dataclass_fields__}
    for tx in (_SubTx(**base), SimpleNamespace(**base)):
        assert c_line(tx, "/v1/items") == reference(tx, "/v1/items")
    with pytest.raises(AttributeError):
        c_line(SimpleNamespace(conn_id="x"), "/")


def test_arguments() -> None:
    mod = _csvrow()
    assert mod.transaction_line(_TX, "/r") == reference(_TX, "/r")
    with pytest.raises(TypeError):
        mod.transaction_line(_TX)
    with pytest.raises(TypeError):
        mod.transaction_line(_TX, "/r", False, 1)
    with pytest.raises(TypeError):
        mod.configure(Transaction, None, None, None)


def test_no_reference_leaks() -> None:
    """Every reference taken is released, on success and on every error path."""
    _csvrow()
    uri, route, ua = "/leak?x=" + "1" * 5, "/leak" + "2" * 3, 'a "quoted", ua' + "3" * 2
    good = Transaction("C1", 1, "1.1.1.1", 1, "2.2.2.2", 2, uri=uri, user_agent=ua, status=10**40,
                       interim_statuses=(100, 10**30), notes=("a", "b"), request_ts_ns=10**30,
                       response_ts_ns=5, request_end_ts_ns=1, response_end_ts_ns=3)
    bad = [Transaction("C1", 1, "1.1.1.1", 1, "2.2.2.2", 2, uri=uri, user_agent=ua, **kw)  # type: ignore[arg-type]
           for kw in ({"tunnel_bytes": _Raises()}, {"consumer": _Raises()}, {"interim_statuses": (1, _Raises())},
                      {"notes": (1,)}, {"response_ts_ns": 1.0, "request_end_ts_ns": 2.0})]
    objs = (uri, route, ua, good, *bad, *(getattr(tx, f) for tx in (good, *bad) for f in Transaction.__slots__
                                           if isinstance(getattr(tx, f), (tuple, str, _Raises))))
    for tx in (good, *bad):  # warm up (caches, interned results)
        same_outcome(tx, route)
    before = [sys.getrefcount(o) for o in objs]
    blocks = sys.getallocatedblocks()  # a leaked temporary (a str, a big int) shows up here
    for _ in range(2000):
        c_line(good, route)
        for tx in bad:
            try:
                c_line(tx, route)
            except (ValueError, TypeError):
                pass
            else:
                raise AssertionError("no exception")
    assert [sys.getrefcount(o) for o in objs] == before
    assert sys.getallocatedblocks() - blocks < 500


def _write(path: Path, txs: list[tuple[Any, str]], pure: bool, privacy: Privacy,
           monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("NETRUM_PURE", "1" if pure else "0")
    w = TransactionWriter(path, privacy)
    assert (w._line is None) == (pure or bool(privacy.masks))
    for tx, route in txs:
        w.write(tx, route)
    assert w.rows == len(txs)
    w.close()
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(transactions(), TEXT), max_size=30), st.booleans())
def test_whole_file_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               txs: list[tuple[Transaction, str]], keep_query_values: bool) -> None:
    _csvrow()
    privacy = Privacy(keep_query_values=keep_query_values)
    pure = _write(tmp_path / "pure.csv", txs, True, privacy, monkeypatch)
    fast = _write(tmp_path / "fast.csv", txs, False, privacy, monkeypatch)
    assert fast == pure


def test_masks_keep_the_python_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _csvrow()
    privacy = make_privacy(masks=("ipv4",))
    data = _write(tmp_path / "t.csv", [(_TX, "/v1/items")], False, privacy, monkeypatch)
    assert b"{ipv4}" in data and b"192.168" not in data


def test_corpus_files_same_bytes(shared_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every real capture of the shared corpus: transactions.csv written both ways, byte for byte."""
    _csvrow()
    from netrum.capture.pcapfile import open_capture
    from netrum.pipeline import Analyzer

    pcaps = sorted((shared_corpus / "pcaps").glob("*.pcap*"))
    assert pcaps
    txs: list[tuple[Any, str]] = []
    for pcap in pcaps:
        found: list[Transaction] = []
        counters = Counters()
        analyzer = Analyzer(found.append, counters=counters)
        analyzer.feed(open_capture(str(pcap), counters))
        analyzer.finish()
        txs += [(tx, tx.uri.partition("?")[0] if tx.uri else "") for tx in found]
    assert len(txs) > 100
    pure = _write(tmp_path / "pure.csv", txs, True, csvfiles.DEFAULT_PRIVACY, monkeypatch)
    fast = _write(tmp_path / "fast.csv", txs, False, csvfiles.DEFAULT_PRIVACY, monkeypatch)
    assert fast == pure


@pytest.mark.parametrize("privacy", [Privacy(), Privacy(keep_query_values=True), make_privacy(masks=("ipv4",))])
def test_transaction_formatter(privacy: Privacy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The formatter for other writers (scale partitions): the same line pure and accelerated."""
    _csvrow()
    txs = [_TX, Transaction("C2", 3, "10.1.2.3", 1, "h", 2, uri="/a?b=c,d#e", user_agent='x"y\r\nz',
                            interim_statuses=(100,), notes=("resync",))]
    monkeypatch.setenv("NETRUM_PURE", "1")
    pure = csvfiles.transaction_formatter(privacy)
    monkeypatch.delenv("NETRUM_PURE")
    fast = csvfiles.transaction_formatter(privacy)
    for tx in txs:
        out = io.StringIO()
        csv.writer(out).writerow(transaction_row(tx, "/a", privacy))
        assert pure(tx, "/a") == fast(tx, "/a") == out.getvalue()
