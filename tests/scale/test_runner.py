"""Scale-out runs end to end (netrum.scale.runner, `netrum analyze --workers N [--scheduler ADDR]`): the three
output files are byte-identical to the single process's, for one capture and for rotated pieces of one."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from netrum.batch import AnalyzeOptions, analyze_files
from netrum.limits import SECOND_NS, Limits

from .conftest import CORPUS

OUTPUTS = ("transactions.csv", "endpoints.csv", "health.csv")
SHORT_IDLE = AnalyzeOptions(Limits(flow_idle_timeout_ns=2 * SECOND_NS))
REPO_ROOT = Path(__file__).resolve().parents[2]


def read(out: Path, name: str) -> bytes:
    return (out / name).read_bytes()


def assert_same_outputs(a: Path, b: Path, names: tuple[str, ...] = OUTPUTS) -> None:
    for name in names:
        assert read(a, name) == read(b, name), f"{name} differs between {a.name} and {b.name}"


def health_without_inputs(out: Path) -> list[list[str]]:
    """health.csv rows except those that name the input files or count them."""
    with open(out / "health.csv", newline="") as f:
        return [r for r in csv.reader(f) if r[1] not in ("inputs", "capture_files")]


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_byte_identical_outputs_on_a_mixed_capture(mixed_pcap: Path, tmp_path: Path,
                                                                 workers: int) -> None:
    one = analyze_files([str(mixed_pcap)], tmp_path / "one", SHORT_IDLE)
    many = analyze_files([str(mixed_pcap)], tmp_path / "many", SHORT_IDLE, workers=workers)
    assert one.transactions == many.transactions > 50
    assert_same_outputs(tmp_path / "one", tmp_path / "many")
    assert not [p for p in (tmp_path / "many").iterdir() if p.name.startswith(".")], "temporary files left"


CORPUS_SAMPLE = ("1000-requests-one-dropped-response.pcap", "pipelined-requests.pcap", "wikipedia.pcap",
                 "mixed-vlan-mpls.pcap", "sv-http-gap-simple.pcap", "m57-long-49583-80.pcap",
                 "zeek-image-1080-80-x.pcapng")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")
@pytest.mark.parametrize("name", CORPUS_SAMPLE)
def test_workers_give_byte_identical_outputs_on_corpus_captures(name: str, tmp_path: Path) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} not in the corpus")
    analyze_files([str(path)], tmp_path / "one")
    for workers in (2, 3):
        analyze_files([str(path)], tmp_path / f"w{workers}", workers=workers)
        assert_same_outputs(tmp_path / "one", tmp_path / f"w{workers}")


def test_rotated_pieces_as_a_list_and_as_a_directory_are_one_stream(
        rotated_dir: tuple[Path, Path, list[Path]], tmp_path: Path) -> None:
    whole, directory, pieces = rotated_dir
    assert [p.name for p in pieces][:3] == ["cap", "cap1", "cap2"] and pieces[-1].name == "cap10"
    analyze_files([str(whole)], tmp_path / "whole", SHORT_IDLE)
    as_list = analyze_files([str(p) for p in pieces], tmp_path / "list", SHORT_IDLE)
    as_dir = analyze_files([str(directory)], tmp_path / "dir", SHORT_IDLE)
    assert as_list.counters["capture_files"] == as_dir.counters["capture_files"] == len(pieces) == 11
    for out in ("list", "dir"):
        assert_same_outputs(tmp_path / "whole", tmp_path / out, ("transactions.csv", "endpoints.csv"))
        assert health_without_inputs(tmp_path / "whole") == health_without_inputs(tmp_path / out)
    # the long connection spans every file boundary; each of its exchanges is found exactly once
    with open(tmp_path / "dir" / "transactions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    long_rows = [r for r in rows if r["client_port"] == "40000"]
    depths = Counter(r["depth"] for r in long_rows)
    assert len(long_rows) > 60 and max(depths.values()) == 1
    assert sorted(int(d) for d in depths) == list(range(1, len(long_rows) + 1))
    # ... and it has packets in every piece: every file boundary falls inside it
    from netrum.capture.pcapfile import open_capture
    from netrum.counters import Counters

    for piece in pieces:
        with open_capture(str(piece), Counters()) as r:
            assert any(b"\x9c\x40" in data[34:38] for _, _, data, _ in r), f"{piece.name} misses it"


@pytest.mark.parametrize("workers", [2, 3])
def test_rotated_directory_with_workers_is_identical_to_the_single_run(
        rotated_dir: tuple[Path, Path, list[Path]], tmp_path: Path, workers: int) -> None:
    _, directory, _ = rotated_dir
    analyze_files([str(directory)], tmp_path / "one", SHORT_IDLE)
    analyze_files([str(directory)], tmp_path / "many", SHORT_IDLE, workers=workers)
    assert_same_outputs(tmp_path / "one", tmp_path / "many")


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netrum", "analyze", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout, check=False)


def test_cli_workers_and_directory(rotated_dir: tuple[Path, Path, list[Path]], tmp_path: Path) -> None:
    _, directory, _ = rotated_dir
    one = run_cli(str(directory), "--out", str(tmp_path / "one"), "--idle-timeout", "2", "-q")
    many = run_cli(str(directory), "--out", str(tmp_path / "many"), "--idle-timeout", "2", "-q",
                   "--workers", "2")
    assert one.returncode == 0 and many.returncode == 0, one.stderr + many.stderr
    assert_same_outputs(tmp_path / "one", tmp_path / "many")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("not a capture\n")
    bad = run_cli(str(empty), "--out", str(tmp_path / "x"), "--workers", "2")
    assert bad.returncode == 2 and "without a pcap" in bad.stderr and "Traceback" not in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real `dask scheduler` and two `dask worker` processes on loopback (killed at the end)."""
    pytest.importorskip("distributed")
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT, env=env,
                              start_new_session=True)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--local-directory", str(tmp_path / f"worker{i}"), "--name", f"netrum-test-{i}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT, env=env,
                start_new_session=True))
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:  # each was started in its own session: signal its process group (a nanny and its worker)
        for p in reversed(procs):
            _signal_group(p, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait(timeout=5)


def _signal_group(p: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def test_dask_cluster_on_rotated_captures_is_identical_to_the_single_run(
        dask_cluster: str, rotated_dir: tuple[Path, Path, list[Path]], tmp_path: Path) -> None:
    _, directory, _ = rotated_dir
    one = run_cli(str(directory), "--out", str(tmp_path / "one"), "--idle-timeout", "2", "-q")
    on_dask = run_cli(str(directory), "--out", str(tmp_path / "dask"), "--idle-timeout", "2", "-q",
                      "--scheduler", dask_cluster, "--workers", "2")
    assert one.returncode == 0, one.stderr
    assert on_dask.returncode == 0, on_dask.stderr
    assert_same_outputs(tmp_path / "one", tmp_path / "dask")


def test_damaged_capture_reports_the_same_damage_with_workers(mixed_pcap: Path, tmp_path: Path) -> None:
    """The partitioned pcap scan keeps the reader's record checks: a file cut mid-record and a record with
    an impossible length give the same partial results and the same health rows."""
    data = mixed_pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    corrupt = tmp_path / "corrupt.pcap"
    pos, n = 24, 0
    while n < 900:  # walk to the 900th record and give it an impossible captured length
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
        n += 1
    corrupt.write_bytes(data[:pos + 8] + (10**7).to_bytes(4, "little") + data[pos + 12:])
    for path in (cut, corrupt):
        one = analyze_files([str(path)], tmp_path / f"{path.stem}-one", SHORT_IDLE)
        two = analyze_files([str(path)], tmp_path / f"{path.stem}-two", SHORT_IDLE, workers=2)
        assert one.partial and two.partial and one.problems == two.problems
        assert_same_outputs(tmp_path / f"{path.stem}-one", tmp_path / f"{path.stem}-two")


def test_port_and_server_filters_with_workers(mixed_pcap: Path, tmp_path: Path) -> None:
    for i, options in enumerate((
            AnalyzeOptions(SHORT_IDLE.limits, server_ports=frozenset({80})),
            AnalyzeOptions(SHORT_IDLE.limits, server_addrs=frozenset({bytes([10, 0, 0, 2])})))):
        one = analyze_files([str(mixed_pcap)], tmp_path / f"one{i}", options)
        two = analyze_files([str(mixed_pcap)], tmp_path / f"two{i}", options, workers=2)
        assert one.counters["flow_ignored_filter"] > 0 and one.transactions > 20
        assert two.transactions == one.transactions
        assert_same_outputs(tmp_path / f"one{i}", tmp_path / f"two{i}")


def test_standard_input_cannot_be_split(tmp_path: Path) -> None:
    from netrum.errors import UsageError

    with pytest.raises(UsageError, match="standard input"):
        analyze_files(["-"], tmp_path / "x", workers=2)


def test_dask_local_cluster_is_identical_to_the_single_run(mixed_pcap: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    one = analyze_files([str(mixed_pcap)], tmp_path / "one", SHORT_IDLE)
    local = analyze_files([str(mixed_pcap)], tmp_path / "local", SHORT_IDLE, workers=2, scheduler="local")
    assert local.transactions == one.transactions
    assert_same_outputs(tmp_path / "one", tmp_path / "local")


def test_overlapping_files_fall_back_to_the_merged_stream(tmp_path: Path) -> None:
    """Files read one after another only when none goes back in time; two captures of the same period
    (say two mirror ports) are merged by timestamp, with or without workers."""
    from .synth import mixed_capture, write_pcap_exact

    packets = mixed_capture(seed=4, connections=20)
    a = write_pcap_exact(tmp_path / "a.pcap", packets[0::2])
    b = write_pcap_exact(tmp_path / "b.pcap", packets[1::2])
    from netrum.scale.partition import PartitionTask, _run_partition, run_partition
    from netrum.scale.scan import Overlap

    with pytest.raises(Overlap):  # the fast sequential read notices, and run_partition starts again merged
        _run_partition(PartitionTask((str(a), str(b)), 0, 2, SHORT_IDLE.limits, part_dir=str(tmp_path)),
                       sequential=True)
    assert not list(tmp_path.glob("part*")), "the abandoned part file is removed"

    analyze_files([str(a), str(b)], tmp_path / "one", SHORT_IDLE)
    for workers in (2, 3):
        analyze_files([str(a), str(b)], tmp_path / f"w{workers}", SHORT_IDLE, workers=workers)
        assert_same_outputs(tmp_path / "one", tmp_path / f"w{workers}")
    r = run_partition(PartitionTask((str(a), str(b)), 0, 2, SHORT_IDLE.limits, part_dir=str(tmp_path)))
    assert r.frames == len(packets) and r.counters["capture_files"] == 2
