#!/usr/bin/env python3
"""Make a large, real HTTP/1.1 capture for the benchmark (run as root).

Real traffic, really captured: nginx serves a mix of static files, wrk loads it with keep-alive
connections (plus a second wrk sending ``Connection: close``), and tcpdump writes every frame.

kinds
  ethernet  two network namespaces joined by a veth pair (MTU 1500, TSO/GSO/GRO and checksum
            offload off), so frames are Ethernet-sized (MSS 1448 with TCP timestamps); nginx in the
            server namespace, wrk in the client namespace, tcpdump on the server's veth.
  loopback  one private network namespace; nginx, wrk and tcpdump on its ``lo`` (127.0.0.1,
            MTU 65536, the kernel's loopback offloads as they are), so segments are loopback-sized.

The addresses live only inside namespaces this script creates (198.18.0.0/30, the RFC 2544
benchmarking range, for the veth pair; 127.0.0.1 inside the loopback namespace) and are removed on
exit.  The run stops when tcpdump has written ``--packets`` frames or after ``--max-seconds``;
every child is killed on exit.  Beside the capture it writes ``FILE.json`` (how it was made, wrk and
tcpdump statistics) and ``FILE.facts.json`` (packets, bytes, requests seen).

  scripts/bench_capture.py --kind ethernet --out /work/bench-data/ethernet-1m.pcap
  scripts/bench_capture.py --kind loopback --out /work/bench-data/loopback-1m.pcap
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib.pcapinfo import capture_facts

NS_PREFIX = "netrum-bench"
VETH_CLIENT = "nrb-cli"
VETH_SERVER = "nrb-srv"
ADDR_CLIENT = "198.18.0.1"  # RFC 2544 benchmarking range, only inside our own namespaces
ADDR_SERVER = "198.18.0.2"
ADDR_LOOPBACK = "127.0.0.1"
HTTP_PORT = 80  # a port tshark's HTTP dissector decodes by default
TOOLS = ("ip", "nginx", "wrk", "tcpdump")
PACKAGES = {"ip": "iproute2", "nginx": "nginx", "wrk": "wrk", "tcpdump": "tcpdump", "ethtool": "ethtool"}
EXTENSIONS = {".html": "text", ".json": "text", ".js": "text", ".css": "text", ".txt": "text", ".png": "bin"}


@dataclass(frozen=True, slots=True)
class KindDefaults:
    packets: int
    mean_body_bytes: int
    keepalive_connections: int
    close_connections: int
    delay_ms: int
    close_delay_ms: int  # slows the Connection: close client to a few percent of the requests


KIND_DEFAULTS: dict[str, KindDefaults] = {
    # ~9 packets per request with 1448-byte segments, like the reference veth capture (116k requests)
    "ethernet": KindDefaults(
        packets=1_050_000,
        mean_body_bytes=8_000,
        keepalive_connections=8,
        close_connections=1,
        delay_ms=0,
        close_delay_ms=0,
    ),
    # ~2.3 packets per request, ~3.5 KB per packet, like the reference loopback capture (434k requests)
    "loopback": KindDefaults(
        packets=1_000_000,
        mean_body_bytes=8_000,
        keepalive_connections=8,
        close_connections=1,
        delay_ms=0,
        close_delay_ms=1,
    ),
}


class CaptureError(Exception):
    """A user-facing failure (not root, missing tool, child failed)."""


@dataclass
class Children:
    """Processes this script started; each is ended by its own pid (process group) on exit."""

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, start_new_session=True, **kw)  # type: ignore[call-overload]
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 5.0) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            self.stop(proc)


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise CaptureError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def install_packages(packages: list[str]) -> None:
    """Debian packages for the missing tools (root only); apt-get update first when the plain install fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"bench_capture: installing {' '.join(packages)}", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if subprocess.run(cmd, check=False, env=env, stdout=subprocess.DEVNULL, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False, env=env, stdout=subprocess.DEVNULL, timeout=900)
        subprocess.run(cmd, check=False, env=env, stdout=subprocess.DEVNULL, timeout=900)


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


# ---------------------------------------------------------------------------------------------- site


def body_sizes(n: int, mean: int, lo: int, hi: int, seed: int) -> list[int]:
    """n sizes in [lo, hi], log-uniform bent by an exponent chosen so their mean is ``mean``."""
    rng = random.Random(seed)
    us = [(i + rng.random()) / n for i in range(n)]  # stratified, so the mean is stable

    def sizes(p: float) -> list[int]:
        return [int(lo * (hi / lo) ** (u**p)) for u in us]

    a, b = 0.2, 20.0  # larger exponent -> smaller sizes
    for _ in range(60):
        mid = (a + b) / 2
        if sum(sizes(mid)) / n > mean:
            a = mid
        else:
            b = mid
    out = sizes((a + b) / 2)
    rng.shuffle(out)
    return out


def make_site(root: Path, n_files: int, mean: int, seed: int) -> list[str]:
    """Static files of a few hundred bytes to 64 KB; returns their URL paths."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    exts = list(EXTENSIONS)
    paths: list[str] = []
    for i, size in enumerate(body_sizes(n_files, mean, 200, 65_536, seed)):
        ext = exts[i % len(exts)]
        sub = ("static", "api/v1", "assets", "img", "docs")[i % 5]
        rel = f"{sub}/item-{i:04d}{ext}"
        if EXTENSIONS[ext] == "bin":
            data = rng.randbytes(size)
        else:
            data = base64.b64encode(rng.randbytes(size))[:size]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append("/" + rel)
    return paths


NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000;
    client_body_temp_path {work}/tmp-body;
    proxy_temp_path {work}/tmp-proxy;
    fastcgi_temp_path {work}/tmp-fastcgi;
    uwsgi_temp_path {work}/tmp-uwsgi;
    scgi_temp_path {work}/tmp-scgi;
    types {{
        text/html html; application/json json; application/javascript js; text/css css;
        text/plain txt; image/png png;
    }}
    default_type application/octet-stream;
    server {{
        listen {addr}:{port};
        server_name bench.example;
        root {work}/www;
        location / {{ }}
    }}
}}
"""

WRK_LUA = """\
-- request mix for the netrum benchmark: a random static file each time
local paths = {{ {paths} }}
local delay_ms = {delay_ms}
local thread_seed = {seed}
init = function(args)
  thread_seed = thread_seed + 1
  math.randomseed(thread_seed)
end
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) netrum-bench/1"
wrk.headers["Accept"] = "*/*"
wrk.headers["Accept-Encoding"] = "identity"
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
if delay_ms > 0 then
  delay = function() return delay_ms end
end
"""


# --------------------------------------------------------------------------------------------- setup


def cleanup_namespaces() -> None:
    out = run(["ip", "netns", "list"], check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX + "-"):
            run(["ip", "netns", "delete", name], check=False)


def setup_ethernet() -> tuple[str, str, str, str, dict[str, str]]:
    """Returns (server ns, client ns, capture interface, server address, offload states)."""
    srv, cli = f"{NS_PREFIX}-srv", f"{NS_PREFIX}-cli"
    run(["ip", "netns", "add", srv])
    run(["ip", "netns", "add", cli])
    run(["ip", "link", "add", VETH_CLIENT, "type", "veth", "peer", "name", VETH_SERVER])
    run(["ip", "link", "set", VETH_CLIENT, "netns", cli])
    run(["ip", "link", "set", VETH_SERVER, "netns", srv])
    offloads: dict[str, str] = {}
    for ns, dev, addr in ((cli, VETH_CLIENT, ADDR_CLIENT), (srv, VETH_SERVER, ADDR_SERVER)):
        run(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
        run(in_ns(ns, ["ip", "link", "set", dev, "mtu", "1500"]))
        run(in_ns(ns, ["ip", "addr", "add", f"{addr}/30", "dev", dev]))
        run(in_ns(ns, ["ip", "link", "set", dev, "up"]))
        # segmentation and checksum offloads off: the capture sees the frames the wire would carry
        run(in_ns(ns, ["ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]), False)
        feats = run(in_ns(ns, ["ethtool", "-k", dev])).stdout
        for key in (
            "tcp-segmentation-offload",
            "generic-segmentation-offload",
            "generic-receive-offload",
            "tx-checksumming",
        ):
            m = re.search(rf"^{key}: (\S+)", feats, re.MULTILINE)
            offloads[f"{dev}.{key}"] = m.group(1) if m else "?"
    still_on = [k for k, v in offloads.items() if v == "on" and ("segmentation" in k or "receive" in k)]
    if still_on:
        raise CaptureError(f"offloads still on after ethtool -K: {', '.join(still_on)}")
    return srv, cli, VETH_SERVER, ADDR_SERVER, offloads


def setup_loopback() -> tuple[str, str, str, str, dict[str, str]]:
    ns = f"{NS_PREFIX}-lo"
    run(["ip", "netns", "add", ns])
    run(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
    offloads: dict[str, str] = {}
    if shutil.which("ethtool"):
        feats = run(in_ns(ns, ["ethtool", "-k", "lo"]), check=False).stdout
        for key in ("tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload"):
            m = re.search(rf"^{key}: (\S+)", feats, re.MULTILINE)
            offloads[f"lo.{key}"] = m.group(1) if m else "?"
    return ns, ns, "lo", ADDR_LOOPBACK, offloads


def wait_listening(ns: str, port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CaptureError(f"nginx exited early ({proc.returncode}); see its error log")
        out = run(in_ns(ns, ["ss", "-ltnH", f"sport = :{port}"]), check=False).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise CaptureError(f"nginx is not listening on port {port} after {timeout_s:.0f}s")


def wait_tcpdump_ready(errlog: Path, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CaptureError(f"tcpdump exited early: {errlog.read_text(errors='replace').strip()}")
        if "listening on" in errlog.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise CaptureError("tcpdump did not start listening")


def parse_wrk(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["requests_per_s"] = float(m.group(1))
    m = re.search(r"Socket errors: (.*)", text)
    if m:
        out["socket_errors"] = m.group(1).strip()
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non_2xx_3xx"] = int(m.group(1))
    return out


def parse_tcpdump(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, pat in (
        ("captured", r"(\d+) packets captured"),
        ("received_by_filter", r"(\d+) packets received by filter"),
        ("dropped_by_kernel", r"(\d+) packets dropped by kernel"),
    ):
        m = re.search(pat, text)
        if m:
            out[key] = int(m.group(1))
    return out


# ----------------------------------------------------------------------------------------------- main


def make_capture(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise CaptureError(
            "must run as root (network namespaces, veth, tcpdump): sudo scripts/bench_capture.py"
        )
    tools = [*TOOLS, "ethtool"] if args.kind == "ethernet" else list(TOOLS)
    missing = [t for t in tools if shutil.which(t) is None]
    if missing and not args.no_install:
        install_packages([PACKAGES[t] for t in missing])
        missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise CaptureError(
            f"missing tools: {', '.join(missing)} (apt-get install -y nginx wrk tcpdump iproute2 ethtool)"
        )
    defaults = KIND_DEFAULTS[args.kind]
    packets = args.packets or defaults.packets
    mean = args.mean_body_bytes or defaults.mean_body_bytes
    conns = args.connections or defaults.keepalive_connections
    close_conns = defaults.close_connections if args.close_connections is None else args.close_connections
    delay_ms = defaults.delay_ms if args.delay_ms is None else args.delay_ms
    close_delay_ms = defaults.close_delay_ms if args.close_delay_ms is None else args.close_delay_ms

    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out.parent).free
    expect = packets * (4_000 if args.kind == "loopback" else 1_100)
    if free < expect * 1.2:
        raise CaptureError(
            f"{out.parent}: {free / 1e9:.1f} GB free, the capture may need {expect / 1e9:.1f} GB"
        )
    work = Path(args.workdir).resolve() if args.workdir else out.parent / f".work-{args.kind}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for sub in ("tmp-body", "tmp-proxy", "tmp-fastcgi", "tmp-uwsgi", "tmp-scgi"):
        (work / sub).mkdir()

    paths = make_site(work / "www", args.files, mean, args.seed)
    children = Children()
    partial = out.with_name(out.name + ".partial")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    cleanup_namespaces()
    started = time.time()
    try:
        setup = setup_ethernet if args.kind == "ethernet" else setup_loopback
        srv_ns, cli_ns, iface, addr, offloads = setup()
        (work / "nginx.conf").write_text(NGINX_CONF.format(work=work, addr=addr, port=HTTP_PORT))
        lua = WRK_LUA.format(paths=", ".join(f'"{p}"' for p in paths), delay_ms=delay_ms, seed=args.seed)
        (work / "mix.lua").write_text(lua)
        lua_close = WRK_LUA.format(
            paths=", ".join(f'"{p}"' for p in paths), delay_ms=close_delay_ms, seed=args.seed + 1000
        )
        (work / "mix-close.lua").write_text(lua_close)
        nginx_log = (work / "nginx.out").open("wb")
        nginx = children.start(
            "nginx",
            in_ns(srv_ns, ["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)]),
            stdout=nginx_log,
            stderr=subprocess.STDOUT,
        )
        wait_listening(srv_ns, HTTP_PORT, nginx)

        td_err = work / "tcpdump.err"
        tcpdump = children.start(
            "tcpdump",
            in_ns(
                srv_ns,
                [
                    "tcpdump",
                    "-i",
                    iface,
                    "-n",
                    "-s",
                    "0",
                    "-B",
                    str(args.buffer_kib),
                    "-Z",
                    "root",
                    "-c",
                    str(packets),
                    "-w",
                    str(partial),
                ],
            ),
            stdout=subprocess.DEVNULL,
            stderr=td_err.open("wb"),
        )
        wait_tcpdump_ready(td_err, tcpdump)

        url = f"http://{addr}:{HTTP_PORT}/"
        wrk_cmd = ["wrk", "-t", "1", "-d", f"{args.max_seconds}s", "--timeout", "5s"]
        wrks: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        ka_log = work / "wrk-keepalive.out"
        wrks.append(
            (
                "keepalive",
                children.start(
                    "wrk-keepalive",
                    in_ns(cli_ns, [*wrk_cmd, "-s", str(work / "mix.lua"), "-c", str(conns), url]),
                    stdout=ka_log.open("wb"),
                    stderr=subprocess.STDOUT,
                ),
                ka_log,
            )
        )
        if close_conns > 0:
            cl_log = work / "wrk-close.out"
            wrks.append(
                (
                    "close",
                    children.start(
                        "wrk-close",
                        in_ns(
                            cli_ns,
                            [
                                *wrk_cmd,
                                "-s",
                                str(work / "mix-close.lua"),
                                "-c",
                                str(close_conns),
                                "-H",
                                "Connection: close",
                                url,
                            ],
                        ),
                        stdout=cl_log.open("wb"),
                        stderr=subprocess.STDOUT,
                    ),
                    cl_log,
                )
            )

        deadline = time.monotonic() + args.max_seconds + 30
        last_report = time.monotonic()
        while tcpdump.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if all(p.poll() is not None for _n, p, _l in wrks):
                break
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                size = partial.stat().st_size if partial.exists() else 0
                print(f"  {time.time() - started:5.0f}s  capture {size / 1e6:8.1f} MB", file=sys.stderr)
        load_s = time.time() - started
        # stop the load first (SIGINT: wrk prints its summary), then let tcpdump flush and report
        for _n, proc, _l in wrks:
            children.stop(proc, signal.SIGINT, wait_s=10)
        if tcpdump.poll() is None:
            children.stop(tcpdump, signal.SIGINT, wait_s=30)
        children.stop(nginx, signal.SIGQUIT, wait_s=10)
        td_stats = parse_tcpdump(td_err.read_text(errors="replace"))
        wrk_stats = {name: parse_wrk(log.read_text(errors="replace")) for name, _p, log in wrks}
    except BaseException:
        partial.unlink(missing_ok=True)  # an interrupted or failed run leaves no half capture behind
        if not args.keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        children.stop_all()
        cleanup_namespaces()

    if not partial.exists() or partial.stat().st_size <= 24:
        raise CaptureError(f"no capture written; tcpdump said: {td_err.read_text(errors='replace').strip()}")
    partial.replace(out)
    facts = capture_facts(out)
    meta = {
        "kind": args.kind,
        "made_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "load_seconds": round(load_s, 1),
        "target_packets": packets,
        "interface": iface,
        "addresses": {"client": ADDR_CLIENT if args.kind == "ethernet" else ADDR_LOOPBACK, "server": addr},
        "port": HTTP_PORT,
        "offloads": offloads,
        "site": {
            "files": len(paths),
            "mean_body_bytes_target": mean,
            "seed": args.seed,
            "min_body_bytes": 200,
            "max_body_bytes": 65_536,
        },
        "wrk": {
            "keepalive_connections": conns,
            "close_connections": close_conns,
            "delay_ms": delay_ms,
            "close_delay_ms": close_delay_ms,
            **{name: stats for name, stats in wrk_stats.items()},
        },
        "tcpdump": td_stats,
        "kernel": platform.release(),
        "nginx": run(["nginx", "-v"], check=False).stderr.strip(),
        "facts": facts.to_dict(),
    }
    out.with_name(out.name + ".json").write_text(json.dumps(meta, indent=1))
    if not args.keep_workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(meta, indent=1))
    if td_stats.get("dropped_by_kernel"):
        print(
            f"warning: tcpdump says {td_stats['dropped_by_kernel']} packets dropped by kernel",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=sorted(KIND_DEFAULTS), required=True)
    ap.add_argument("--out", required=True, help="capture file to write (keep it outside the repo)")
    ap.add_argument("--packets", type=int, default=0, help="stop after this many frames (default per kind)")
    ap.add_argument("--max-seconds", type=int, default=900, help="upper bound on the load phase")
    ap.add_argument("--mean-body-bytes", type=int, default=0, help="mean size of the served files")
    ap.add_argument("--files", type=int, default=400, help="number of distinct files served")
    ap.add_argument("--connections", type=int, default=0, help="keep-alive connections (wrk -c)")
    ap.add_argument(
        "--close-connections", type=int, default=None, help="connections sending Connection: close"
    )
    ap.add_argument("--delay-ms", type=int, default=None, help="pause per connection between requests")
    ap.add_argument("--close-delay-ms", type=int, default=None, help="same, for the Connection: close client")
    ap.add_argument("--buffer-kib", type=int, default=524_288, help="tcpdump -B (kernel buffer, KiB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", help="scratch dir for site/config/logs (default beside --out)")
    ap.add_argument("--keep-workdir", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    args = ap.parse_args(argv)
    try:
        return make_capture(args)
    except CaptureError as exc:
        print(f"bench_capture: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"bench_capture: interrupted ({exc})", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
