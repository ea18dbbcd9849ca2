"""Anomaly and health counter names, and the ledger that counts them.

Every frame, byte or message that netrum drops or does not understand is counted here under a stable
snake_case name (Zeek calls these "weirds"). The names are an interface: the CLI summary, health.csv and
the live exporters print them, and users grep for them. Add a name to COUNTER_DOCS before using it; a
test checks that every counter incremented anywhere in netrum is documented here.
"""
from __future__ import annotations

# name -> (group, one-line meaning). Groups order the health report.
COUNTER_DOCS: dict[str, tuple[str, str]] = {
    # capture sources
    "capture_files": ("capture", "capture files opened"),
    "capture_packets": ("capture", "frames read from the capture"),
    "capture_bytes": ("capture", "bytes of the frames on the wire (original length)"),
    "capture_truncated_file": ("capture", "captures cut in the middle of a record (file ends early)"),
    "capture_corrupt_record": ("capture", "records with an impossible length; the rest of that file was skipped"),
    "capture_snaplen_cut": ("capture", "frames stored shorter than on the wire (snaplen)"),
    "capture_snaplen_bytes": ("capture", "bytes missing from frames because of snaplen"),
    "capture_unsupported_block": ("capture", "pcapng blocks skipped (not packets)"),
    "capture_out_of_order_ts": ("capture", "frames whose timestamp is earlier than the previous frame's"),
    "capture_kernel_drops": ("capture", "packets the kernel dropped (live capture)"),
    "capture_queue_drops": ("capture", "packets dropped because the analysis queue was full (live)"),
    # decode
    "decode_unknown_linktype": ("decode", "frames of a link type netrum does not decode"),
    "decode_truncated": ("decode", "frames too short for the headers they announce"),
    "decode_non_ip": ("decode", "frames carrying neither IPv4 nor IPv6 (ARP, LLDP, STP...)"),
    "decode_non_tcp": ("decode", "IP packets that are not TCP (UDP, ICMP...) and not a known tunnel"),
    "decode_bad_ip": ("decode", "IP headers with an impossible version, length or header length"),
    "decode_bad_tcp": ("decode", "TCP headers with an impossible data offset"),
    "decode_ip_padding": ("decode", "frames with bytes after the IP total length (trimmed)"),
    "decode_tunnel_too_deep": ("decode", "frames nested deeper than max_tunnel_depth"),
    "decode_unknown_tunnel": ("decode", "GRE or tunnel payloads of a kind netrum does not decode"),
    "decode_ip_fragment": ("decode", "IP fragments received"),
    "decode_ip_reassembled": ("decode", "IP datagrams rebuilt from fragments"),
    "decode_ip_fragment_expired": ("decode", "fragmented datagrams given up (timeout or table full)"),
    "tunnel_vxlan": ("decode", "frames decapsulated from VXLAN"),
    "tunnel_geneve": ("decode", "frames decapsulated from GENEVE"),
    "tunnel_gre": ("decode", "packets decapsulated from plain GRE"),
    "tunnel_erspan": ("decode", "frames decapsulated from ERSPAN (type II/III)"),
    "tunnel_teredo": ("decode", "IPv6 packets decapsulated from Teredo"),
    "tunnel_ip_in_ip": ("decode", "packets decapsulated from IP-in-IP, 6in4 or 4in6"),
    # flows and TCP reassembly
    "tcp_packets": ("tcp", "TCP segments handed to the flow table"),
    "tcp_payload_bytes": ("tcp", "TCP payload bytes handed to the flow table"),
    "flow_opened": ("tcp", "connections tracked"),
    "flow_midstream": ("tcp", "connections picked up without their SYN"),
    "flow_role_by_syn": ("tcp", "connections whose client was known from the handshake"),
    "flow_role_by_http": ("tcp", "connections whose client was told from the first HTTP start line"),
    "flow_role_by_port": ("tcp", "connections whose client was guessed from the port numbers"),
    "flow_reused": ("tcp", "4-tuples reused by a new connection (new SYN after the old one ended)"),
    "flow_closed_fin": ("tcp", "connections ended by FIN"),
    "flow_closed_rst": ("tcp", "connections ended by RST"),
    "flow_expired_idle": ("tcp", "connections closed after flow_idle_timeout of packet time"),
    "flow_table_full": ("tcp", "connections evicted because the table held max_flows"),
    "flow_open_at_end": ("tcp", "connections still open when the capture ended"),
    "flow_not_http": ("tcp", "connections in which no HTTP start line was found (not analysed)"),
    "flow_ignored_filter": ("tcp", "segments ignored by the --port/--server filters"),
    "tcp_no_payload_no_flow": ("tcp", "segments without payload for an unknown connection (ignored)"),
    "tcp_duplicate": ("tcp", "segments whose bytes were all delivered or buffered already"),
    "tcp_overlap": ("tcp", "segments partly overlapping data already seen (trimmed)"),
    "tcp_overlap_conflict": ("tcp", "overlaps whose bytes differ from the first copy (first copy kept)"),
    "tcp_out_of_order": ("tcp", "segments that arrived ahead of a hole and were buffered"),
    "tcp_ooo_overflow": ("tcp", "times the out-of-order buffer hit its limit and a gap was declared"),
    "tcp_gap": ("tcp", "holes in a byte stream (data never captured)"),
    "tcp_gap_bytes": ("tcp", "bytes missing in those holes"),
    "tcp_ack_hold": ("tcp", "server segments held until the request they answer was seen (ACK rule)"),
    "tcp_ack_hold_overflow": ("tcp", "times held server data exceeded max_ack_hold_bytes and was released"),
    "tcp_data_after_close": ("tcp", "segments with data after the stream ended (FIN/RST)"),
    # HTTP
    "http_requests": ("http", "request heads parsed"),
    "http_responses": ("http", "final response heads parsed"),
    "http_interim_responses": ("http", "1xx interim responses (never counted as the response)"),
    "http_transactions": ("http", "transactions written"),
    "http_no_response": ("http", "requests that never got a response in the capture"),
    "http_unmatched_response": ("http", "responses with no request to pair with"),
    "http_response_lost": ("http", "requests whose whole response fell in a gap (told by the TCP ACKs)"),
    "http_bad_request": ("http", "request heads that could not be parsed (skipped, resynchronised)"),
    "http_bad_response": ("http", "response heads that could not be parsed (skipped, resynchronised)"),
    "http_bad_chunk": ("http", "chunked bodies with a malformed chunk line (message ended there)"),
    "http_resync": ("http", "times the parser searched for the next start line"),
    "http_resync_bytes": ("http", "bytes skipped while searching for a start line"),
    "http_gap_in_body": ("http", "gaps inside a body of known length (skipped; sizes stay exact)"),
    "http_gap_out_of_body": ("http", "gaps in a head, a chunked or close-delimited body (message marked)"),
    "http_head_too_large": ("http", "message heads over max_header_bytes"),
    "http_too_many_pending": ("http", "requests dropped from a queue over max_pending_requests"),
    "http_truncated": ("http", "messages cut by the end of the connection or the capture"),
    "http_09": ("http", "HTTP/0.9 requests (no version)"),
    "http_obs_fold": ("http", "obsolete line folding in header fields (accepted)"),
    "http_bare_lf": ("http", "lines ended by a bare LF (accepted)"),
    "http_bad_content_length": ("http", "invalid or conflicting Content-Length fields"),
    "http_upgrade": ("http", "connections switched to another protocol (101 or CONNECT 2xx)"),
    "http_tunnel_bytes": ("http", "bytes after an Upgrade or CONNECT (not parsed)"),
    "http_uri_cut": ("http", "request-targets longer than max_uri_chars (cut in outputs)"),
    "http_bad_forwarded": ("http", "forwarding headers with a hop that is not an address (walk stopped there)"),
}

# Flags written in Transaction.notes (and the `notes` column). name -> meaning.
NOTES: dict[str, str] = {
    "midstream": "the connection was picked up without its handshake",
    "no_response": "no response was seen for this request",
    "no_request": "a response with no request to pair with (request before the capture, or lost)",
    "gap_request": "bytes of the request were missing (gap); sizes may be short",
    "gap_response": "bytes of the response were missing (gap); sizes may be short",
    "resync": "the parser skipped unparseable bytes before this message",
    "truncated_request": "the request was cut by the end of the connection or capture",
    "truncated_response": "the response was cut by the end of the connection or capture",
    "close_delimited": "the response body ended with the connection (no length given)",
    "upgrade": "the connection switched protocol after this exchange (101 or CONNECT)",
    "http09": "HTTP/0.9 exchange: no headers, body ends with the connection",
    "role_guessed": "client and server were guessed from the port numbers",
    "reordered": "response bytes arrived before the request that caused them (held by the ACK rule)",
    "bad_chunk": "the chunked body was malformed; the size counts what could be framed",
    "pending_overflow": "dropped from a pending queue over max_pending_requests",
    "snaplen": "packets of this exchange were cut by snaplen; sizes come from headers",
}


class Counters(dict[str, int]):
    """A ledger of named counts. Missing names read as 0, so ``c["tcp_gap"] += 1`` just works.

    Counters from many workers or windows merge by addition (``merge``).
    """

    def __missing__(self, key: str) -> int:
        return 0

    def merge(self, other: Counters | dict[str, int]) -> None:
        for k, v in other.items():
            self[k] = self.get(k, 0) + v

    def nonzero(self) -> dict[str, int]:
        return {k: v for k, v in self.items() if v}

    def rows(self) -> list[tuple[str, str, int, str]]:
        """(group, name, value, meaning) for every documented counter (zeros included, so the set of
        rows is stable) plus any undocumented one that was counted."""
        out = [(g, n, self.get(n, 0), doc) for n, (g, doc) in COUNTER_DOCS.items()]
        for n, v in self.items():
            if n not in COUNTER_DOCS:
                out.append(("other", n, v, "undocumented counter"))
        return out
