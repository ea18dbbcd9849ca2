"""The C lane (netrum/_lane.c, netrum/lane.py) against the pure-Python reference: byte-identical outputs.

Every capture is analysed twice, with ``AnalyzeOptions(engine="python")`` (the tested reference) and with
the default engine, and every output file must be byte-identical (on a failure the message names the
file, the first differing line and, for CSV files, the differing columns); the RunResult's figures
(transactions, problems, partial, timestamps, counters) must match too. Where the lane must engage (a
single classic pcap file, no filters, no consumer options) the result says ``engine == "lane"``, and
``lane_stats`` proves both halves ran: clean connections analysed in C (``flows_lane``), damaged or
unusual ones handed to Python (``flows_python``).

Inputs: the committed captures (pcaps/*.pcap), the shared corpus (skipped when ../shared is absent), the nginx capture made in this session (``gt_capture``),
damaged copies of pcaps/nginx-mix.pcap, pcaps/api-routes.pcap and the session capture (reordered,
duplicated, dropped, cut, 96-byte snaplen, retransmitted, responses before requests), small synthetic
captures and seeded mixes (tests/integration/lanecases.py), each synthetic capture again as pcapng and
pcapng layouts (interfaces, resolutions, sections, block kinds), the option sets the lane must honour (limits,
routes, privacy), the inputs and options it must leave to Python, the CLI's ``--engine python``, and,
with NETRUM_LANE_BENCH=1, the first 20,000 packets of the benchmark captures in /work/bench-data.

Skipped only when netrum._lane cannot be imported (no C compiler at install time); under CI (env CI set)
that is a failure instead.
"""
from __future__ import annotations

import csv
import gzip
import os
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netrum.batch import AnalyzeOptions, analyze_files
from netrum.counters import Counters
from netrum.http.consumer import make_config

from .groundtruth import COMMITTED_PCAP, REPO_ROOT, Capture, RunNetrum
from .lanecases import (
    DAMAGE,
    LINKTYPE_LINUX_SLL,
    SECOND,
    SYNTHETIC,
    T0,
    US,
    Conn,
    NgInterface,
    Packet,
    Pair,
    assert_same_outputs,
    blob,
    build_synthetic,
    control,
    damaged,
    first_difference,
    fuzz_capture,
    ng_interface,
    ng_other,
    ng_packet,
    ng_section,
    pcap_head,
    req,
    resp,
    run_both,
    synthetic_packets,
    write_pcap,
)

COMMITTED = sorted((REPO_ROOT / "pcaps").glob("*.pcap"))
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "pcaps"
CORPUS_FILES = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []
BENCH = Path("/work/bench-data")
BENCH_FILES = ("ethernet-1m.pcap", "loopback-1m.pcap")
BENCH_PACKETS = 20_000


@pytest.fixture(scope="module", autouse=True)
def lane_built() -> Iterator[None]:
    """Skip (fail under CI) without the extension; run with NETRUM_PURE unset so the lane can engage."""
    try:
        import netrum._lane  # noqa: F401
    except ImportError as e:
        msg = f"netrum._lane is not built ({e}): the lane's differential tests need the C extension"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: the extension must be built there)")
        pytest.skip(msg)
    saved = os.environ.pop("NETRUM_PURE", None)
    yield
    if saved is not None:
        os.environ["NETRUM_PURE"] = saved


# The lane's documented reasons to stand aside on a classic pcap file (netrum/lane.py): the whole run is
# then the pure-Python one, and the outputs must still be identical.
ASIDE_NONFAST = "need the general decoder"  # over MAX_NONFAST_SHARE of the frames are not the C decoder's
ASIDE_MAX_FLOWS = "too close to max_flows"  # the reference would evict connections


def check(pair: Pair, engine: str = "lane", may_stand_aside: str = "") -> dict[str, int]:
    """Outputs identical; the reference ran in Python and the default engine is the expected one (or, when
    ``may_stand_aside`` is given, the lane stood aside for that reason). Returns the lane's integer
    statistics (flows_lane, flows_python, frames_python...), empty when it stood aside."""
    assert pair.python.engine == "python"
    assert_same_outputs(pair)
    info = pair.default.lane_stats
    if may_stand_aside and pair.default.engine == "python":
        assert may_stand_aside in str(info.get("reason", "")), f"stood aside, but not for {may_stand_aside!r}: {info}"
        return {}
    assert pair.default.engine == engine, f"expected engine {engine!r}, got {pair.default.engine!r}: {info}"
    stats = {k: v for k, v in info.items() if isinstance(v, int)}
    if engine == "lane":
        for key in ("flows_lane", "flows_python", "frames_python"):
            assert key in stats, f"lane_stats lacks {key}: {info}"
    return stats


# ------------------------------------------------------------------------------------------ real captures
@pytest.mark.parametrize("pcap", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_capture(pcap: Path, tmp_path: Path) -> None:
    stats = check(run_both(pcap, tmp_path))
    assert stats["flows_lane"] > 0, f"clean loopback/ethernet capture but nothing analysed in C: {stats}"


# Corpus captures on which the lane stands aside: most of their frames are ones the C decoder leaves to
# Python (Teredo). Every other corpus capture must engage it.
CORPUS_MAY_STAND_ASIDE = {
    "Teredo.pcap": ASIDE_NONFAST,  # IPv6 in Teredo (UDP)
}


@pytest.mark.skipif(not CORPUS_FILES, reason=f"shared corpus not found at {CORPUS} (it lives beside the repo)")
@pytest.mark.parametrize("pcap", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus_capture(pcap: Path, tmp_path: Path) -> None:
    # pcap and pcapng files engage the lane, except for the stand-asides listed above.
    pair = run_both(pcap, tmp_path)
    check(pair, "lane", CORPUS_MAY_STAND_ASIDE.get(pcap.name, ""))


def keepalive_pcap(path: Path, conns: int, exchanges: int, net: str, port: int, spacing_us: int,
                   body: int) -> tuple[Path, list[Packet]]:
    """``conns`` clean keep-alive connections side by side, ``exchanges`` each, then FIN: the capture and
    its frames in file order."""
    packets: list[Packet] = []
    for k in range(conns):
        c = Conn(packets, f"{net}.{k + 1}", port + k)
        t = c.handshake(T0 + k * spacing_us * US)
        for i in range(exchanges):
            t = c.exchange(t + 300 * US, req(target=f"/{net}/{k}/{i}"), resp(body=blob(body + i % 50, i)))
        c.fin(t)
    packets.sort(key=lambda p: p[0])
    return write_pcap(path, packets), packets


def assert_counts_the_frames_read(counters: Counters, frames: int, first_ts: int | None, last_ts: int | None,
                                  packets: list[Packet]) -> None:
    """The capture's figures of an interrupted run are those of the frames read before the stop, not the
    first pass's of the whole file: the health beside the partial results counts what they came from."""
    read = counters["capture_packets"]
    assert 0 < read < len(packets) and read == frames, (read, frames, len(packets))
    assert counters["capture_bytes"] == sum(len(f) for _, f in packets[:read])
    assert (first_ts, last_ts) == (packets[0][0], packets[read - 1][0])
    assert counters["tcp_packets"] == read  # every frame read is a TCP segment, and counted once


def test_ctrl_c_in_the_second_pass_keeps_the_open_exchanges(tmp_path: Path) -> None:
    """Ctrl-C while the lane analyses (raised from the progress callback, as the CLI's bar would see it):
    the run is marked interrupted and the exchanges of the connections still open in C are written, ended
    where the reading stopped (no_response, truncated_response), as Analyzer.finish ends the reference's.
    The capture: 16 clean keep-alive connections side by side (30,000 frames), none of which ends with an
    unanswered request unless cut."""
    path, packets = keepalive_pcap(tmp_path / "busy.pcap", 16, 360, "10.0.1", 42000, 37, 200)
    size = path.stat().st_size
    seen = [0, 0]

    def progress(n: int) -> None:
        seen[0] += n
        if seen[0] > size * 0.75 and not seen[1]:  # in the second pass (each pass: half of the file)
            seen[1] = 1
            raise KeyboardInterrupt  # once, as one Ctrl-C

    out = tmp_path / "out"
    got = analyze_files([str(path)], out, AnalyzeOptions(), progress)
    assert got.engine == "lane" and got.interrupted, got.lane_stats
    with (out / "transactions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    ended = [r for r in rows if "no_response" in r["notes"] or "truncated_response" in r["notes"]]
    assert 0 < len(rows) < 16 * 360 and ended, f"{len(rows)} rows, {len(ended)} ended by the interruption"
    assert_counts_the_frames_read(got.counters, int(got.lane_stats["frames"]),  # type: ignore[call-overload]
                                  got.first_ts_ns, got.last_ts_ns, packets)


def test_ctrl_c_in_a_callback_of_the_second_pass_counts_the_frames_read(tmp_path: Path) -> None:
    """Ctrl-C lands in whatever Python code the lane is calling: here the sink, mid-frame (a real SIGINT
    most often does, as transactions reach it one by one). The capture's figures are still those of the
    frames read up to that frame."""
    from netrum.capture.pcapfile import open_capture
    from netrum.lane import run_lane
    from netrum.limits import Limits
    from netrum.pipeline import Analyzer

    path, packets = keepalive_pcap(tmp_path / "sink.pcap", 4, 200, "10.0.2", 43000, 41, 100)
    seen = [0]

    def sink(tx: object) -> None:
        seen[0] += 1
        if seen[0] == 300:
            raise KeyboardInterrupt

    counters = Counters()
    reader = open_capture(str(path), counters)
    analyzer = Analyzer(sink, Limits(), counters=counters, partition=(0, 1))
    outcome = run_lane([reader], analyzer, Limits())
    reader.close()
    assert outcome.used and outcome.interrupted
    assert_counts_the_frames_read(counters, analyzer.frames, analyzer.first_ts_ns, analyzer.last_ts_ns, packets)


def test_ctrl_c_in_the_first_pass_ends_the_run(tmp_path: Path) -> None:
    """Ctrl-C before the lane has analysed anything: an interrupted run with nothing found, not a second run
    in the pure-Python engine."""
    def progress(n: int) -> None:
        raise KeyboardInterrupt

    packets: list[Packet] = []
    t = T0
    for k in range(40):
        t = control(packets, t + 5 * US, 33000 + k, rounds=30)
    path = write_pcap(tmp_path / "busy.pcap", packets)
    got = analyze_files([str(path)], tmp_path / "out", AnalyzeOptions(), progress)
    assert got.interrupted and got.engine == "lane" and got.transactions == 0, (got.engine, got.lane_stats)
    assert "first pass" in str(got.lane_stats.get("reason"))


def test_nginx_session_capture(gt_capture: Capture, tmp_path: Path) -> None:
    """The capture made through a private nginx this session (keep-alive, pipelining, HEAD, 304, 204,
    100-continue, chunked both ways, HTTP/1.0, IPv6)."""
    stats = check(run_both(gt_capture.pcap, tmp_path))
    assert stats["flows_lane"] > 0, stats


# ------------------------------------------------------------------------------------------ damaged
DAMAGE_SOURCES = {"nginx-mix": COMMITTED_PCAP, "api-routes": REPO_ROOT / "pcaps" / "api-routes.pcap"}


def _check_damaged(kind: str, pair: Pair) -> None:
    if kind == "cut-middle":  # read up to the cut record, which is reported as the reader reports it
        assert pair.python.partial and pair.default.partial
        assert pair.default.problems == pair.python.problems and pair.default.problems
        assert check(pair, "lane")["flows_lane"] > 0
        return
    # snaplen: every frame cut short goes to Python's decoder; most are, so the lane may stand aside
    stats = check(pair, may_stand_aside=ASIDE_NONFAST if kind == "snaplen96" else "")
    if not stats:
        return
    assert stats["flows_python"] > 0, f"{kind}: damage everywhere, yet nothing handed to Python: {stats}"
    if kind in ("duplicate5", "retransmit", "response-first", "drop1"):  # reorder8 may taint every one
        assert stats["flows_lane"] > 0, f"{kind}: some connections stay clean, yet none analysed in C: {stats}"


@pytest.mark.parametrize("kind", DAMAGE)
@pytest.mark.parametrize("source", list(DAMAGE_SOURCES))
def test_damaged_capture(source: str, kind: str, tmp_path: Path) -> None:
    """A committed capture damaged (scripts/damage.py's functions, retransmitted segments, responses moved
    before their requests): still a classic pcap, so the lane engages, and the damaged connections
    (never all of them) go to Python. The cut file is a partial run: problems and exit state match."""
    src = damaged(DAMAGE_SOURCES[source], tmp_path / f"{kind}.pcap", kind)
    _check_damaged(kind, run_both(src, tmp_path))


@pytest.mark.parametrize("kind", ["reorder8", "duplicate5", "drop1", "response-first"])
def test_damaged_session_capture(kind: str, gt_capture: Capture, tmp_path: Path) -> None:
    src = damaged(gt_capture.pcap, tmp_path / f"{kind}.pcap", kind)
    _check_damaged(kind, run_both(src, tmp_path))


# ------------------------------------------------------------------------------------------ synthetic
@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_capture(name: str, tmp_path: Path) -> None:
    case = SYNTHETIC[name]
    pair = run_both(build_synthetic(name, tmp_path / f"{name}.pcap"), tmp_path)
    stats = check(pair)
    assert pair.default.transactions > 0
    assert stats["flows_lane"] >= case.lane_min, f"{name}: expected >= {case.lane_min} connections in C: {stats}"
    assert stats["flows_python"] >= case.python_min, (
        f"{name}: the lane's contract excludes this case's connection, yet none went to Python: {stats}")
    if case.python_max is not None:
        assert stats["flows_python"] <= case.python_max, f"{name}: clean capture partly sent to Python: {stats}"


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_capture_as_pcapng(name: str, tmp_path: Path) -> None:
    """The same cases written as pcapng (what dumpcap and Wireshark write): the lane reads the blocks itself
    and must give the same files, with the same split between C and Python as from the classic pcap."""
    classic = check(run_both(build_synthetic(name, tmp_path / f"{name}.pcap"), tmp_path / "pcap"))
    ng = check(run_both(build_synthetic(name, tmp_path / f"{name}.pcapng", pcapng=True), tmp_path / "pcapng"))
    split = ("flows_lane", "flows_python", "frames_python", "transactions_lane")
    assert {k: ng[k] for k in split} == {k: classic[k] for k in split}, (ng, classic)


def _to_sll(frame: bytes) -> bytes:
    """An untagged Ethernet frame re-framed as Linux cooked v1 (same ethertype and payload)."""
    return b"\x00\x00\x00\x01\x00\x06" + frame[6:12] + b"\x00\x00" + frame[12:]


def _pcapng_layout(name: str, packets: list[Packet]) -> bytes:
    """The all-clean synthetic capture laid out in one of the ways pcapng allows (see PCAPNG_LAYOUTS)."""
    eth, sll = NgInterface(), NgInterface(LINKTYPE_LINUX_SLL)
    if name == "nanosecond":
        i = NgInterface(tsresol=9)
        return ng_section() + ng_interface(i) + b"".join(ng_packet(t, f, i) for t, f in packets)
    if name == "binary-resolution":  # if_tsresol 2^-30 s
        i = NgInterface(tsresol=0x80 | 30)
        return ng_section() + ng_interface(i) + b"".join(ng_packet(t, f, i) for t, f in packets)
    if name == "tsoffset":
        i = NgInterface(tsresol=3, tsoffset_s=1_699_999_000)
        return ng_section() + ng_interface(i) + b"".join(ng_packet(t, f, i) for t, f in packets)
    if name == "big-endian":
        return ng_section(">") + ng_interface(eth, ">") + b"".join(ng_packet(t, f, eth, 0, ">") for t, f in packets)
    if name == "two-interfaces":  # frames alternate between an Ethernet and a Linux cooked interface
        out = ng_section() + ng_interface(eth) + ng_interface(sll)
        return out + b"".join(ng_packet(t, _to_sll(f), sll, 1) if k % 2 else ng_packet(t, f, eth, 0)
                              for k, (t, f) in enumerate(packets))
    if name == "two-sections":  # a big-endian section with a Linux cooked interface follows
        half = len(packets) // 2
        return (ng_section() + ng_interface(eth) + b"".join(ng_packet(t, f, eth) for t, f in packets[:half])
                + ng_section(">") + ng_interface(sll, ">")
                + b"".join(ng_packet(t, _to_sll(f), sll, 0, ">") for t, f in packets[half:]))
    if name == "simple-and-obsolete-blocks":  # every 5th frame an SPB (no time: the previous one's), every 7th a PB
        body = b"".join(ng_packet(t, f, eth, kind="spb" if k % 5 == 4 else "pb" if k % 7 == 6 else "epb")
                        for k, (t, f) in enumerate(packets))
        return ng_section() + ng_interface(eth) + body
    if name == "other-blocks":  # name resolution, interface statistics and a custom block: counted, skipped
        body = b"".join(ng_packet(t, f, eth) + (ng_other((4, 5, 0x40000BAD)[k % 3]) if k % 10 == 0 else b"")
                        for k, (t, f) in enumerate(packets))
        return ng_section() + ng_interface(eth) + ng_other(4) + body
    if name == "snaplen-cut":  # 1,500-byte snaplen: full-sized segments stored in part (their flows: Python's)
        i = NgInterface(snaplen=1500)
        return ng_section() + ng_interface(i) + b"".join(
            ng_packet(t, f, i, stored=min(len(f), 1500)) for t, f in packets)
    if name == "truncated":
        full = ng_section() + ng_interface(eth) + b"".join(ng_packet(t, f, eth) for t, f in packets)
        return full[:-37]
    if name == "undeclared-interface":
        return ng_section() + ng_interface(eth) + b"".join(ng_packet(t, f, eth, 3 if k == 40 else 0)
                                                           for k, (t, f) in enumerate(packets))
    if name in PCAPNG_DAMAGED:
        blocks = [ng_packet(t, f, eth) for t, f in packets]
        k = 50  # the damaged block: the reader stops there and reports it
        b = bytearray(blocks[k])
        if name == "block-length":
            b[4:8] = struct.pack("<I", 13)
        elif name == "lengths-disagree":
            b[-4:] = struct.pack("<I", len(b) + 4)
        elif name == "bad-byte-order":
            b = bytearray(ng_section())
            b[8:12] = b"\x01\x02\x03\x04"
        elif name == "short-packet-block":
            b = bytearray(ng_other(6, b"\x00" * 16))
        elif name == "caplen-past-block":
            b[20:24] = struct.pack("<I", len(b))
        return ng_section() + ng_interface(eth) + b"".join(blocks[:k]) + bytes(b) + b"".join(blocks[k + 1:])
    if name == "resolution-beyond-64-bits":  # if_tsresol 2^-100 s: the reference's integers are unbounded
        i = NgInterface(tsresol=0x80 | 100)
        return ng_section() + ng_interface(i) + b"".join(ng_packet(t, f, i) for t, f in packets)
    raise AssertionError(name)


# layout -> the stand-aside reason ("" where the lane must analyse it)
PCAPNG_LAYOUTS = {
    "nanosecond": "", "binary-resolution": "", "tsoffset": "", "big-endian": "", "two-interfaces": "",
    "two-sections": "", "simple-and-obsolete-blocks": "", "other-blocks": "", "snaplen-cut": "",
    "truncated": "", "undeclared-interface": "", "block-length": "", "lengths-disagree": "",
    "bad-byte-order": "", "short-packet-block": "", "caplen-past-block": "",
    "resolution-beyond-64-bits": "pcapng beyond the lane",
}
PCAPNG_DAMAGED = ("truncated", "undeclared-interface", "block-length", "lengths-disagree", "bad-byte-order",
                  "short-packet-block", "caplen-past-block")


@pytest.mark.parametrize("name", list(PCAPNG_LAYOUTS))
def test_pcapng_layouts(name: str, tmp_path: Path) -> None:
    """pcapng as writers lay it out (capture.pcapfile._iter_pcapng's rules, read again in C): timestamp
    resolutions and offsets, byte orders, several interfaces and sections of different link types, simple
    and obsolete packet blocks, blocks of other kinds (capture_unsupported_block), cut frames. A damaged
    file is read up to the damage and the damage reported in the reader's words; one whose timestamps
    leave 64 bits is left to Python."""
    path = tmp_path / f"{name}.pcapng"
    path.write_bytes(_pcapng_layout(name, synthetic_packets("all-clean")))
    aside = PCAPNG_LAYOUTS[name]
    pair = run_both(path, tmp_path)
    if aside:
        assert pair.default.engine == "python", pair.default.lane_stats
    stats = check(pair, "lane", aside)
    if name in PCAPNG_DAMAGED:  # read up to the damage, reported in the reader's words
        assert pair.default.partial and pair.default.problems == pair.python.problems, pair.default.problems
        assert stats["flows_lane"] > 0, stats
    elif name == "snaplen-cut":
        assert stats["flows_python"] > 0, stats  # every connection has a cut segment
    elif not aside:
        assert stats["flows_lane"] >= 7 and stats["frames_python"] == 0, stats
        if name == "two-interfaces":
            assert pair.default.linktypes == {1, LINKTYPE_LINUX_SLL}
        if name == "other-blocks":
            assert pair.default.counters["capture_unsupported_block"] > 0


FUZZ_SEEDS = range(1, 9)


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_fuzzed_mix(seed: int, tmp_path: Path) -> None:
    """Seeded mixes of mostly clean connections (lanecases.fuzz_capture): many in C, the rest in Python,
    transactions written in the single run's order even when frames share timestamps."""
    path = write_pcap(tmp_path / f"fuzz{seed}.pcap", fuzz_capture(seed))
    stats = check(run_both(path, tmp_path))
    assert stats["flows_lane"] > 0, stats


def test_frames_cut_short_in_clean_connections(tmp_path: Path) -> None:
    """A few frames stored shorter than on the wire (caplen < len) inside otherwise clean connections: those
    connections are Python's, the others stay in C."""
    packets: list[Packet] = []
    for k in range(6):
        control(packets, T0 + k * SECOND, 35000 + k, rounds=2)
    packets.sort(key=lambda p: p[0])
    data = [i for i, (_ts, f) in enumerate(packets) if len(f) > 200]
    cut = {data[3]: 80, data[20]: 54, data[len(data) // 2]: 150}
    stats = check(run_both(write_pcap(tmp_path / "short.pcap", packets, cut=cut), tmp_path))
    assert stats["flows_lane"] > 0 and stats["flows_python"] > 0, stats


def test_first_difference_names_the_column(tmp_path: Path) -> None:
    """The failure report itself: file, line and differing CSV column."""
    a, b = tmp_path / "a" / "transactions.csv", tmp_path / "b" / "transactions.csv"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_text("id,status,uri\n1,200,/x\n2,404,/y\n")
    b.write_text("id,status,uri\n1,200,/x\n2,500,/y\n")
    msg = first_difference(a, b)
    assert "line 3" in msg and "status: '404' != '500'" in msg and "uri" not in msg.split("columns:")[1]
    b.write_text("id,status,uri\n1,200,/x\n")
    assert "only python has more, from line 3" in first_difference(a, b)
    assert first_difference(a, a) == ""


# ------------------------------------------------------------------------------------------ options
def _options(name: str) -> tuple[Path | str, dict[str, object]]:
    """(capture, AnalyzeOptions fields) of the option sets the lane must honour (it qualifies: one
    classic pcap file, no --port/--server, no consumer options)."""
    from dataclasses import replace

    from netrum.aggregate.openapi import declared_from_openapi, load_document
    from netrum.aggregate.routes import DeclaredRoutes
    from netrum.export.privacy import make_privacy
    from netrum.limits import DEFAULT_LIMITS, SECOND_NS

    api = REPO_ROOT / "pcaps" / "api-routes.pcap"
    if name == "openapi+privacy":
        declared = DeclaredRoutes()
        for r in declared_from_openapi(load_document(str(REPO_ROOT / "pcaps" / "api-routes.openapi.json"))):
            declared.add(r)
        return api, {"declared_routes": declared, "privacy": make_privacy(True, ("email", "ipv4"))}
    if name == "route-budget-3-no-learning":
        return COMMITTED_PCAP, {"learn_routes": False, "route_budget": 3}
    if name == "keep-query-values":
        return COMMITTED_PCAP, {"privacy": make_privacy(True, ())}
    table: dict[str, tuple[Path | str, dict[str, int]]] = {
        "idle-timeout-2s": ("interleaved-40", {"flow_idle_timeout_ns": 2 * SECOND_NS}),
        "idle-timeout-2s-boundaries": ("idle-2s-boundaries", {"flow_idle_timeout_ns": 2 * SECOND_NS}),
        "linger-1s": ("linger-boundaries", {"closed_flow_linger_ns": SECOND_NS}),
        "max-flows-4": ("interleaved-40", {"max_flows": 4}),
        "max-header-bytes-200": (COMMITTED_PCAP, {"max_header_bytes": 200}),
        "max-pending-2": ("pipelined-20", {"max_pending_requests": 2}),
        "max-uri-chars-20": (COMMITTED_PCAP, {"max_uri_chars": 20}),
    }
    source, limits = table[name]
    return source, {"limits": replace(DEFAULT_LIMITS, **limits)}


OPTION_SETS = ("openapi+privacy", "route-budget-3-no-learning", "keep-query-values", "idle-timeout-2s",
               "idle-timeout-2s-boundaries", "linger-1s",
               "max-flows-4", "max-header-bytes-200", "max-pending-2", "max-uri-chars-20")


@pytest.mark.parametrize("name", OPTION_SETS)
def test_options_the_lane_honours(name: str, tmp_path: Path) -> None:
    src, opts = _options(name)
    path = build_synthetic(src, tmp_path / "capture.pcap") if isinstance(src, str) else src
    pair = run_both(path, tmp_path, **opts)
    if name == "max-flows-4":  # 40 connections at once: the lane stands aside (the reference evicts)
        check(pair, "python")
        assert ASIDE_MAX_FLOWS in str(pair.default.lane_stats.get("reason")), pair.default.lane_stats
        return
    stats = check(pair)
    assert stats["flows_lane"] > 0, stats


# ------------------------------------------------------------------------------------------ filters
_V4 = socket.inet_aton
FILTERS: dict[str, dict[str, object]] = {
    "port-80": {"server_ports": frozenset({80})},
    "client-port": {"server_ports": frozenset({33000})},  # the control's client side: the flow is ignored
    "port-81-nothing": {"server_ports": frozenset({81})},
    "no-port-at-all": {"server_ports": frozenset()},
    "server-address": {"server_addrs": frozenset({_V4("10.1.0.2")})},
    "client-address": {"server_addrs": frozenset({_V4("10.1.0.1")})},
    "port-and-address": {"server_ports": frozenset({80, 8080}), "server_addrs": frozenset({_V4("10.1.0.2"),
                                                                                           _V4("10.0.0.2")})},
}
FILTER_SOURCES = ("fuzz-1", "ip-fragments", "vxlan-mixed", "port-reuse", "idle-boundaries-ticker")


@pytest.mark.parametrize("source", FILTER_SOURCES)
@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_the_lane_honours(name: str, source: str, tmp_path: Path) -> None:
    """--port/--server in the lane (FlowTable.packet's rule: a segment is taken when either port, and either
    address, is a server's; a connection whose server side is left out is ignored whole): the same files,
    flow_ignored_filter included. Filtered segments move no packet clock, in C or in Python (fragments,
    tunnels)."""
    if source.startswith("fuzz-"):
        path = write_pcap(tmp_path / "capture.pcap", fuzz_capture(int(source[5:])))
    else:
        path = build_synthetic(source, tmp_path / "capture.pcap")
    pair = run_both(path, tmp_path, **FILTERS[name])
    check(pair, "lane")
    if name in ("port-81-nothing", "no-port-at-all"):
        assert pair.default.transactions == 0 and pair.default.counters["flow_ignored_filter"] > 0


def test_filters_on_the_bundled_capture(tmp_path: Path) -> None:
    """nginx-mix.pcap's server (port 46349 on 127.0.0.1 and ::1): by port, by address, by its clients' port."""
    loop4, loop6 = socket.inet_pton(socket.AF_INET, "127.0.0.1"), socket.inet_pton(socket.AF_INET6, "::1")
    for what, opts in {"port": {"server_ports": frozenset({46349})},
                       "v4 address": {"server_addrs": frozenset({loop4})},
                       "v6 address": {"server_addrs": frozenset({loop6})},
                       "a client port": {"server_ports": frozenset({56954})}}.items():
        pair = run_both(COMMITTED_PCAP, tmp_path / what.replace(" ", "-"), **opts)  # type: ignore[arg-type]
        try:
            check(pair, "lane")
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from e


def test_filters_with_partitioned_workers_run_in_python(tmp_path: Path) -> None:
    """Partitioned (--workers 3: two analysing processes), the reference gives filtered segments an owner
    before the filter: the lane stands aside there, and the output is still the single run's."""
    opts = {"server_ports": frozenset({46349})}
    a, b = tmp_path / "py", tmp_path / "w3"
    ref = analyze_files([str(COMMITTED_PCAP)], a, AnalyzeOptions(engine="python", **opts))  # type: ignore[arg-type]
    got = analyze_files([str(COMMITTED_PCAP)], b, AnalyzeOptions(**opts), workers=3)  # type: ignore[arg-type]
    assert got.engine == "python"
    assert_same_outputs(Pair(ref, got, a, b))


# ------------------------------------------------------------------------------------------ fallbacks
def _both(paths: list[str], tmp_path: Path, options: AnalyzeOptions, ref: AnalyzeOptions) -> Pair:
    a, b = tmp_path / "out-python", tmp_path / "out-default"
    return Pair(analyze_files(paths, a, ref), analyze_files(paths, b, options), a, b)


CONSUMER_OPTIONS = {
    "default": make_config(),
    "api-key": make_config("X-API-Key", b"salt-1"),
    "authorization": make_config("Authorization", b"salt-2", redact=["user-agent"]),
    "trusted-proxies": make_config(None, b"", ["10.0.0.0/8", "2001:db8::/32"]),
    "key-and-proxies-redacted": make_config("x-api-key", b"s", ["10.0.0.0/8"], ["host", "content-type",
                                                                               "user-agent"]),
}


@pytest.mark.parametrize("name", list(CONSUMER_OPTIONS))
def test_consumer_options_the_lane_honours(name: str, tmp_path: Path) -> None:
    """--consumer-header, --trusted-proxy and --redact in the lane: the identity hashed and the proxies'
    hops walked by netrum.http.consumer itself, from the fields the C parser extracts by the Python
    parser's rules (first line wins; a repeated list field is joined by the reference, so that connection
    is Python's); consumers.csv and http_bad_forwarded included."""
    opts = {"consumer": CONSUMER_OPTIONS[name]}
    pair = run_both(build_synthetic("consumers", tmp_path / "capture.pcap"), tmp_path, **opts)
    stats = check(pair, "lane")
    assert stats["flows_lane"] >= 4, stats
    if name == "trusted-proxies":
        assert pair.default.counters["http_bad_forwarded"] > 0
        assert stats["flows_python"] == 1, stats  # the repeated X-Forwarded-For line


def test_consumer_header_the_parser_reads_itself_runs_in_python(tmp_path: Path) -> None:
    """An identity field the parser reads for framing or forwarding (content-type here): the lane stands
    aside (the reference reads such a field once for both purposes)."""
    opts = {"consumer": make_config("Content-Type", b"s")}
    pair = run_both(COMMITTED_PCAP, tmp_path, **opts)  # type: ignore[arg-type]
    check(pair, "python")
    assert "identity field" in str(pair.default.lane_stats.get("reason")), pair.default.lane_stats


def test_netrum_pure_forces_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRUM_PURE", "1")
    check(run_both(COMMITTED_PCAP, tmp_path), "python")


@pytest.mark.parametrize("kind", ["clean", "cut-middle"])
def test_cli_engine_option(kind: str, tmp_path: Path, run_netrum: RunNetrum) -> None:
    """`netrum analyze --engine python` and the default: same exit code, stdout, stderr and files (the cut
    file exits 3, partial, on both paths)."""
    src = COMMITTED_PCAP if kind == "clean" else damaged(COMMITTED_PCAP, tmp_path / "cut.pcap", kind)
    runs = {}
    for engine in ("python", "default"):
        out = tmp_path / engine / "out"
        args = ["analyze", src, "--out", out, *(["--engine", "python"] if engine == "python" else [])]
        proc = run_netrum(args)
        runs[engine] = (proc.returncode, proc.stdout.replace(str(out), "OUT"), proc.stderr.replace(str(out), "OUT"))
    assert runs["python"] == runs["default"]
    assert runs["python"][0] == (0 if kind == "clean" else 3), runs["python"]
    for name in sorted(p.name for p in (tmp_path / "python" / "out").iterdir()):
        diff = first_difference(tmp_path / "python" / "out" / name, tmp_path / "default" / "out" / name)
        assert not diff, diff


# ------------------------------------------------------------------------------------------ benchmark slices
@pytest.mark.skipif(not os.environ.get("NETRUM_LANE_BENCH"),
                    reason="set NETRUM_LANE_BENCH=1 to compare on slices of the benchmark captures")
@pytest.mark.parametrize("name", BENCH_FILES)
def test_bench_slice(name: str, tmp_path: Path) -> None:
    src = BENCH / name
    if not src.exists():
        pytest.skip(f"{src} not present (benchmark data is not in CI)")
    head = pcap_head(src, tmp_path / f"head-{name}", BENCH_PACKETS)
    stats = check(run_both(head, tmp_path))
    assert stats["flows_lane"] > 0, stats


# ------------------------------------------------------------------------------------------ --workers
def _workers_pair(capture: Path, work: Path, workers: int) -> Pair:
    """The pure-Python single run against ``--workers`` with the lane (netrum.scale.stream: analysing
    processes stream their transactions, the lane's as tuples a list at a time, to the writing process)."""
    a, b = work / f"py-{workers}", work / f"w-{workers}"
    ref = analyze_files([str(capture)], a, AnalyzeOptions(engine="python"))
    got = analyze_files([str(capture)], b, AnalyzeOptions(), workers=workers)
    return Pair(ref, got, a, b)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("kind", ["drop1", "response-first", "reorder8"])
def test_workers_with_the_lane_on_damaged_captures(kind: str, workers: int, tmp_path: Path) -> None:
    """Connections in C and in Python interleaved in each analysing process's stream, several streams
    merged on emission keys: the files are still the single pure-Python run's, byte for byte."""
    src = damaged(COMMITTED_PCAP, tmp_path / f"{kind}.pcap", kind)
    pair = _workers_pair(src, tmp_path, workers)
    assert pair.default.engine == "lane", pair.default.lane_stats
    assert_same_outputs(pair)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_workers_with_the_lane_on_fuzzed_mixes(seed: int, workers: int, tmp_path: Path) -> None:
    path = write_pcap(tmp_path / f"fuzz{seed}.pcap", fuzz_capture(seed))
    pair = _workers_pair(path, tmp_path, workers)
    assert pair.default.engine == "lane", pair.default.lane_stats
    assert_same_outputs(pair)


def test_workers_with_the_lane_on_the_session_capture(gt_capture: Capture, tmp_path: Path) -> None:
    pair = _workers_pair(gt_capture.pcap, tmp_path, 2)
    assert pair.default.engine == "lane"
    assert_same_outputs(pair)


# ------------------------------------------------------------------------------------------ link layers
def _relink(src: Path, dst: Path, linktype: int, wrap: object) -> Path:
    """A copy of an Ethernet capture with every frame's IP packet rewrapped for another link layer."""
    import dpkt

    with src.open("rb") as fi, dst.open("wb") as fo:
        reader = dpkt.pcap.Reader(fi)
        writer = dpkt.pcap.Writer(fo, linktype=linktype, nano=False)
        for ts, buf in reader:
            ethertype, ip = buf[12:14], buf[14:]
            writer.writepkt(wrap(ethertype, ip), ts)  # type: ignore[operator]
    return dst


_TAG = b"\x00\x05"  # a VLAN TCI (priority 0, VLAN 5)


def _vxlan(et: bytes, ip: bytes, port: int = 4789, pad: int = 0) -> bytes:
    """The Ethernet frame inside VXLAN (RFC 7348, VNI 100) inside UDP inside IPv4, as AWS VPC Traffic
    Mirroring delivers it; ``pad`` bytes of Ethernet padding after the outer IP packet."""
    import dpkt

    inner = b"\x02" * 6 + b"\x04" * 6 + et + ip
    udp = dpkt.udp.UDP(sport=40000, dport=port, data=b"\x08\x00\x00\x00\x00\x00\x64\x00" + inner)
    udp.ulen = len(udp)
    outer = dpkt.ip.IP(src=bytes([10, 9, 0, 1]), dst=bytes([10, 9, 0, 2]), p=17, data=udp)
    outer.len = len(outer)
    return b"\x06" * 6 + b"\x08" * 6 + b"\x08\x00" + bytes(outer) + b"\x00" * pad


def _geneve(et: bytes, ip: bytes, inner_ethernet: bool = True, options: int = 0) -> bytes:
    """GENEVE (RFC 8926, UDP 6081) carrying the Ethernet frame, or the bare IP packet, with ``options``
    4-byte words of options."""
    import dpkt

    proto, inner = (b"\x65\x58", b"\x02" * 6 + b"\x04" * 6 + et + ip) if inner_ethernet else (et, ip)
    head = bytes([options & 0x3F, 0]) + proto + b"\x00\x00\x64\x00" + b"\x00\x01\x80\x01" * options
    udp = dpkt.udp.UDP(sport=40001, dport=6081, data=head + inner)
    udp.ulen = len(udp)
    outer = dpkt.ip.IP(src=bytes([10, 9, 0, 1]), dst=bytes([10, 9, 0, 2]), p=17, data=udp)
    outer.len = len(outer)
    return b"\x06" * 6 + b"\x08" * 6 + b"\x08\x00" + bytes(outer)


def _gre(et: bytes, ip: bytes, kind: str) -> bytes:
    """GRE (RFC 2784/2890) carrying the frame: plain (transparent Ethernet bridging, or the IP packet with a
    key), or ERSPAN type II / III (with and without the platform sub-header), as switches' remote SPAN
    sends it."""
    import dpkt

    frame = b"\x02" * 6 + b"\x04" * 6 + et + ip
    gre = {
        "ether": b"\x00\x00\x65\x58" + frame,
        "ip-key": b"\x20\x00" + et + b"\x00\x00\x00\x2a" + ip,
        "erspan2": b"\x10\x00\x88\xbe" + b"\x00\x00\x00\x07" + b"\x10\x05\x00\x01\x00\x00\x00\x00" + frame,
        "erspan3": b"\x10\x00\x22\xeb" + b"\x00\x00\x00\x07" + b"\x20\x05\x00\x01" + b"\x00" * 6 + b"\x00\x00"
        + frame,
        "erspan3-platform": b"\x10\x00\x22\xeb" + b"\x00\x00\x00\x07" + b"\x20\x05\x00\x01" + b"\x00" * 6
        + b"\x00\x01" + b"\x00" * 8 + frame,
    }[kind]
    outer = dpkt.ip.IP(src=bytes([10, 9, 0, 1]), dst=bytes([10, 9, 0, 2]), p=47, data=gre)
    outer.len = len(outer)
    return b"\x06" * 6 + b"\x08" * 6 + b"\x08\x00" + bytes(outer)
_SLL2_REST = b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01" + b"\x00" + b"\x06" + b"\x02\x42\xac\x11\x00\x02\x00\x00"
def _pppoe(et: bytes, ip: bytes, compressed: bool = False, pad: int = 0) -> bytes:
    """An RFC 2516 PPPoE session frame (session 0x1234) carrying the IP packet; the PPP protocol in one byte
    when ``compressed`` (RFC 1661 section 6.5); ``pad`` bytes after the PPPoE payload (Ethernet padding)."""
    v4 = et == b"\x08\x00"
    proto = (b"\x21" if v4 else b"\x57") if compressed else (b"\x00\x21" if v4 else b"\x00\x57")
    body = proto + ip
    return (b"\x02" * 6 + b"\x04" * 6 + b"\x88\x64" + b"\x11\x00\x12\x34" + len(body).to_bytes(2, "big") + body
            + b"\x00" * pad)


def _mpls(et: bytes, ip: bytes, labels: int = 1) -> bytes:
    """An RFC 3032 label stack (``labels`` deep, the last one bottom-of-stack) over the IP packet."""
    stack = b"".join((0x1000 + k).to_bytes(3, "big")[:2] + bytes([((0x1000 + k) & 0xF) << 4 | (k == labels - 1),
                                                                     64]) for k in range(labels))
    return b"\x02" * 6 + b"\x04" * 6 + b"\x88\x47" + stack + ip


def _ip_options(et: bytes, ip: bytes) -> bytes:
    """IPv4 with 8 bytes of options (NOPs, then end of list: RFC 791 3.1); IPv6 with a hop-by-hop and a
    destination options header (PadN, RFC 8200 4.2) before TCP."""
    if et == b"\x08\x00":
        opts = b"\x01" * 7 + b"\x00"
        hdr = bytearray(ip[:20])
        hdr[0] = 0x47
        hdr[2:4] = (int.from_bytes(ip[2:4], "big") + len(opts)).to_bytes(2, "big")
        return b"\x02" * 6 + b"\x04" * 6 + et + bytes(hdr) + opts + ip[20:]
    hdr = bytearray(ip[:40])
    nxt = hdr[6]
    hdr[6] = 0  # hop-by-hop, then destination options, then the original next header
    hdr[4:6] = (int.from_bytes(ip[4:6], "big") + 16).to_bytes(2, "big")
    exts = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([nxt, 0, 1, 4, 0, 0, 0, 0])
    return b"\x02" * 6 + b"\x04" * 6 + et + bytes(hdr) + exts + ip[40:]


def _ppp_proto(et: bytes, compressed: bool = False) -> bytes:
    v4 = et == b"\x08\x00"
    return (b"\x21" if v4 else b"\x57") if compressed else (b"\x00\x21" if v4 else b"\x00\x57")


def _nflog(et: bytes, ip: bytes, order: str = "<") -> bytes:
    """Linux NFLOG (link type 239): family, version, resource id, then TLVs in the writer's byte order: a
    prefix (NFULA_PREFIX, 10), a hardware header (NFULA_HWHEADER, 11, 14 bytes: padded), the payload (9)."""
    def tlv(kind: int, value: bytes) -> bytes:
        body = struct.pack(order + "HH", 4 + len(value), kind) + value
        return body + b"\x00" * (-len(body) % 4)
    return b"\x02\x00\x00\x05" + tlv(10, b"netrum\x00") + tlv(11, b"\x02" * 14) + tlv(9, ip)


LINK_LAYERS = {
    # name: (link type, frame from (ethertype, IP packet))
    "cisco-hdlc": (104, lambda et, ip: b"\x0f\x00" + et + ip),
    "ppp": (9, lambda et, ip: b"\xff\x03" + _ppp_proto(et) + ip),
    "ppp-compressed-no-address": (9, lambda et, ip: _ppp_proto(et, True) + ip),
    "ppp-hdlc": (50, lambda et, ip: b"\xff\x03" + _ppp_proto(et) + ip),
    "nflog": (239, _nflog),
    "nflog-big-endian": (239, lambda et, ip: _nflog(et, ip, ">")),
    "mpls": (1, _mpls),
    "mpls-3-labels": (1, lambda et, ip: _mpls(et, ip, 3)),
    "pppoe": (1, _pppoe),
    "pppoe-compressed-protocol": (1, lambda et, ip: _pppoe(et, ip, compressed=True)),
    "pppoe-padded": (1, lambda et, ip: _pppoe(et, ip, pad=9)),
    "ip-options": (1, _ip_options),
    "vxlan-ip-options": (1, lambda et, ip: _vxlan(et, _ip_options(et, ip)[14:])),
    "qinq": (1, lambda et, ip: b"\x02" * 6 + b"\x04" * 6 + b"\x88\xa8" + _TAG + b"\x81\x00" + _TAG + et + ip),
    "sll-vlan": (113, lambda et, ip: b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 8 + b"\x81\x00" + _TAG + et + ip),
    "sll2": (276, lambda et, ip: et + _SLL2_REST + ip),
    "sll2-vlan": (276, lambda et, ip: b"\x81\x00" + _SLL2_REST + _TAG + et + ip),
    "loop-108": (108, lambda et, ip: b"\x00\x00\x00\x02" + ip),
    "null-be": (0, lambda et, ip: b"\x00\x00\x00\x02" + ip),
    "raw-12": (12, lambda et, ip: ip),
    "raw-14": (14, lambda et, ip: ip),
    "ipv4-228": (228, lambda et, ip: ip),
    "vxlan": (1, _vxlan),
    "vxlan-8472": (1, lambda et, ip: _vxlan(et, ip, 8472)),
    "vxlan-padded": (1, lambda et, ip: _vxlan(et, ip, pad=6)),
    "geneve-ethernet": (1, _geneve),
    "geneve-ip-options": (1, lambda et, ip: _geneve(et, ip, inner_ethernet=False, options=2)),
    **{f"gre-{k}": (1, lambda et, ip, k=k: _gre(et, ip, k))
       for k in ("ether", "ip-key", "erspan2", "erspan3", "erspan3-platform")},
}


@pytest.mark.parametrize("name", ["mpls", "pppoe", "ip-options", "nflog", "ppp"])
def test_ipv6_behind_the_layers_the_lane_decodes(name: str, tmp_path: Path) -> None:
    """nginx-mix.pcap (IPv4 and IPv6 connections) behind MPLS, PPPoE, NFLOG and PPP, and with IPv6 extension
    headers (hop-by-hop, destination options) and IPv4 options: analysed in C, the same files."""
    linktype, wrap = LINK_LAYERS[name]
    src = _relink(COMMITTED_PCAP, tmp_path / f"{name}.pcap", linktype, wrap)
    stats = check(run_both(src, tmp_path / "wrapped"))
    plain = check(run_both(COMMITTED_PCAP, tmp_path / "plain"))
    split = ("flows_lane", "flows_python", "frames_python")  # the same connections in C as unwrapped
    assert {k: stats[k] for k in split} == {k: plain[k] for k in split}, (stats, plain)


@pytest.mark.parametrize("name", list(LINK_LAYERS))
def test_link_layers_the_lane_decodes(name: str, tmp_path: Path) -> None:
    """Layouts the C decoder takes beyond Python's fast path (VLAN tags, Linux cooked v2, LOOP, the other
    raw-IP link types, VXLAN, GENEVE, GRE and ERSPAN), where Python's general path yields the same segment and counts: same
    files (health.csv's decode_ip_padding and tunnel counters included), analysed in C."""
    linktype, wrap = LINK_LAYERS[name]
    src = _relink(REPO_ROOT / "pcaps" / "api-routes.pcap", tmp_path / f"{name}.pcap", linktype, wrap)
    stats = check(run_both(src, tmp_path))
    assert stats["flows_lane"] > 0 and stats["frames_python"] == 0, stats


# ------------------------------------------------------------------------------------------ rotated files
def _split(src: Path, out_dir: Path, parts: int, interleave: bool = False) -> list[Path]:
    """``src`` cut into ``parts`` files (tcpdump -C/-G style: consecutive runs of frames), or dealt out
    frame by frame (``interleave``: every file spans the whole capture, so they overlap in time)."""
    import dpkt

    with src.open("rb") as fh:
        frames = list(dpkt.pcap.Reader(fh))
    out_dir.mkdir()
    paths = [out_dir / f"part{i:02d}.pcap" for i in range(parts)]
    handles = [p.open("wb") for p in paths]
    writers = [dpkt.pcap.Writer(h, linktype=1) for h in handles]
    per = -(-len(frames) // parts)
    for i, (ts, buf) in enumerate(frames):
        writers[i % parts if interleave else i // per].writepkt(buf, ts)
    for h in handles:
        h.close()
    return paths


@pytest.mark.parametrize("workers", [1, 2])
def test_rotated_files_are_one_stream_in_the_lane(workers: int, tmp_path: Path) -> None:
    """Rotated captures that follow one another in time: the lane reads them one after the other as one
    stream (connections across every boundary), exactly the pure-Python merged run."""
    paths = _split(COMMITTED_PCAP, tmp_path / "rot", 4)
    a, b = tmp_path / "py", tmp_path / "lane"
    ref = analyze_files([str(p) for p in paths], a, AnalyzeOptions(engine="python"))
    got = analyze_files([str(p) for p in paths], b, AnalyzeOptions(), workers=workers)
    assert got.engine == "lane", got.lane_stats
    assert_same_outputs(Pair(ref, got, a, b))


def _cut(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 3 // 5])  # inside a record: reported under the input's own name
    return dst


def _gz(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
    path.unlink()
    return out


def test_gzip_inputs_are_spooled_for_the_lane(tmp_path: Path) -> None:
    """gzip'd captures (tcpdump -z gzip rotations): decompressed once into a temporary spool the lane maps
    (netrum.capture.spool), the same files as the pure-Python streaming run; the spool is gone afterwards."""
    rot = _split(COMMITTED_PCAP, tmp_path / "rot", 3)
    cases = {
        "one file": [_gz(pcap_head(COMMITTED_PCAP, tmp_path / "one.pcap", 10**9))],
        "pcapng": [_gz(build_synthetic("all-clean", tmp_path / "ng.pcapng", pcapng=True))],
        "rotated, gzip and plain": [_gz(rot[0]), rot[1], _gz(rot[2])],
        "a cut capture inside": [_gz(_cut(COMMITTED_PCAP, tmp_path / "cut.pcap"))],
    }
    before = set(os.listdir(tempfile.gettempdir()))
    for what, paths in cases.items():
        pair = _both([str(p) for p in paths], tmp_path / what.replace(" ", "-").replace(",", ""), AnalyzeOptions(),
                     AnalyzeOptions(engine="python"))
        try:
            check(pair, "lane")
            assert "decompressed for the lane" in str(pair.default.lane_stats.get("spool")), pair.default.lane_stats
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from e
    assert not [d for d in set(os.listdir(tempfile.gettempdir())) - before if d.startswith("netrum-spool-")]


def test_gzip_inputs_with_workers_are_spooled_too(tmp_path: Path) -> None:
    """--workers 2 on gzip'd captures (one of them cut inside a record): spooled once in the parent, then the
    lane's streamed workers; the single run's files, the problems naming the inputs as given."""
    rot = _split(COMMITTED_PCAP, tmp_path / "rot", 2)
    paths = [str(_gz(rot[0])), str(_gz(_cut(rot[1], rot[1])))]
    a, b = tmp_path / "py", tmp_path / "w2"
    ref = analyze_files(paths, a, AnalyzeOptions(engine="python"))
    got = analyze_files(paths, b, AnalyzeOptions(), workers=2)
    assert got.engine == "lane" and got.problems and got.problems == ref.problems, (got.engine, got.problems)
    assert_same_outputs(Pair(ref, got, a, b))


def test_damaged_gzip_is_left_to_python(tmp_path: Path) -> None:
    """A gzip file cut short: no spool; the pure-Python run reads what there is and reports the damage under
    the file's own name."""
    z = gzip.compress(COMMITTED_PCAP.read_bytes())
    bad = tmp_path / "cut.pcap.gz"
    bad.write_bytes(z[: len(z) * 2 // 3])
    pair = run_both(bad, tmp_path)
    check(pair, "python")
    assert "damaged gzip" in str(pair.default.lane_stats.get("spool")), pair.default.lane_stats
    assert pair.default.problems and all(str(bad) in p for p in pair.default.problems), pair.default.problems


def test_damaged_files_are_read_up_to_the_damage(tmp_path: Path) -> None:
    """An impossible record (captured length beyond the snaplen's bound) and a middle file of a rotation cut
    inside a record: the lane reads each file up to where the reader stops, reports the damage in its words
    (capture_corrupt_record / capture_truncated_file, the problems in health.csv) and goes on with the next
    file, as the pure-Python merged run does."""
    data = bytearray(COMMITTED_PCAP.read_bytes())
    pos, n = 24, 0
    while n < 300:  # the 301st record's captured length made impossible
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
        n += 1
    data[pos + 8:pos + 12] = struct.pack("<I", 0x7FFFFFF0)
    bad = tmp_path / "corrupt.pcap"
    bad.write_bytes(bytes(data))
    rot = _split(COMMITTED_PCAP, tmp_path / "rot", 3)
    _cut(rot[1], rot[1])
    for what, paths in {"corrupt record": [bad], "rotation cut in the middle": rot}.items():
        pair = _both([str(p) for p in paths], tmp_path / what.replace(" ", "-"), AnalyzeOptions(),
                     AnalyzeOptions(engine="python"))
        try:
            assert check(pair, "lane")["flows_lane"] > 0
            assert pair.default.partial and pair.default.problems == pair.python.problems, pair.default.problems
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from e


def test_overlapping_files_are_left_to_python(tmp_path: Path) -> None:
    paths = _split(COMMITTED_PCAP, tmp_path / "mix", 3, interleave=True)
    a, b = tmp_path / "py", tmp_path / "lane"
    ref = analyze_files([str(p) for p in paths], a, AnalyzeOptions(engine="python"))
    got = analyze_files([str(p) for p in paths], b, AnalyzeOptions())
    assert got.engine == "python" and "overlap" in str(got.lane_stats.get("reason")), got.lane_stats
    assert_same_outputs(Pair(ref, got, a, b))


def test_several_files_and_a_directory(tmp_path: Path) -> None:
    """Two captures recorded at different times, given as files or as the directory holding them: one
    stream, read by the lane one file after the other."""
    files = [str(COMMITTED_PCAP), str(REPO_ROOT / "pcaps" / "api-routes.pcap")]
    for what, paths in {"two files": files, "a directory": [str(REPO_ROOT / "pcaps")]}.items():
        pair = _both(paths, tmp_path / what.replace(" ", "-"), AnalyzeOptions(), AnalyzeOptions(engine="python"))
        try:
            check(pair, "lane")
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from e
