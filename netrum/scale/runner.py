"""Run the partitions of an analysis locally or on Dask, and merge them into the single run's output.

- local (``--workers N``): a ``concurrent.futures.ProcessPoolExecutor`` of N processes; parts are
  written to a temporary directory beside the output and read back from there.
- Dask (``--scheduler tcp://host:8786``, or ``--scheduler local`` for a LocalCluster): the same
  ``run_partition`` runs on dask.distributed workers; parts come back inline (compressed) in the results,
  so workers need no directory shared with the client; only the captures must be readable at the same
  paths on every worker (shared storage).

The merge is exact: transactions.csv is a streaming k-way merge of the parts on their emission keys
(which order them as the single process wrote them), endpoint and consumer statistics merge by concatenating
latency arrays (percentiles are computed on the sorted union), counters add (capture counters are partition 0's).
Limits apply per worker: with N workers the flow table holds up to N x max_flows connections, so a run
that hits ``flow_table_full`` (evictions) can differ from the single process; nothing else does.
"""
from __future__ import annotations

import csv
import heapq
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from operator import itemgetter
from pathlib import Path

from netrum.aggregate.consumers import ConsumerAggregator
from netrum.aggregate.endpoints import EndpointAggregator
from netrum.batch import AnalyzeOptions, RunResult, write_results
from netrum.capture.pcapfile import open_capture
from netrum.counters import Counters
from netrum.errors import UsageError
from netrum.export.csvfiles import TRANSACTION_COLUMNS
from netrum.scale.partition import PartitionResult, PartitionTask, Record, read_part, run_partition


def make_tasks(paths: Sequence[str], n: int, options: AnalyzeOptions, part_dir: str | None) -> list[PartitionTask]:
    return [PartitionTask(tuple(paths), k, n, options.limits, options.server_ports, options.server_addrs,
                          part_dir, options.consumer, options.privacy, options.engine) for k in range(n)]


def run_local(tasks: list[PartitionTask]) -> list[PartitionResult]:
    """One process per task. Ctrl-C reaches the workers too (same process group): each stops reading,
    returns what it found marked interrupted, and the merge goes on."""
    results: list[PartitionResult | None] = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(run_partition, t) for t in tasks]
        interrupted = False
        for i, fut in enumerate(futures):
            while True:
                try:
                    results[i] = fut.result()
                    break
                except KeyboardInterrupt:
                    if interrupted:
                        raise
                    interrupted = True
        if interrupted:
            for r in results:
                if r is not None:
                    r.interrupted = True
    return [r for r in results if r is not None]


def run_dask(tasks: list[PartitionTask], scheduler: str) -> list[PartitionResult]:
    """The tasks on dask.distributed: ``scheduler`` is a scheduler address, or "local" for a LocalCluster
    of one single-threaded worker process per task."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--scheduler needs dask.distributed: pip install 'netrum[dask]'") from None
    if scheduler == "local":
        with LocalCluster(n_workers=len(tasks), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            return _gather(client, tasks)
    try:
        client = Client(scheduler, timeout=30)
    except OSError as e:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    with client:
        return _gather(client, tasks)


def _gather(client: object, tasks: list[PartitionTask]) -> list[PartitionResult]:
    futures = client.map(run_partition, tasks, pure=False)  # type: ignore[attr-defined]
    results: list[PartitionResult] = client.gather(futures)  # type: ignore[attr-defined]
    return results


def dask_threads(scheduler: str) -> int:
    """Worker threads of a running Dask cluster (the default partition count with --scheduler)."""
    from distributed import Client

    with Client(scheduler, timeout=30) as client:
        return max(1, sum(client.nthreads().values()))


def analyze_partitioned(
    paths: Sequence[str],
    out_dir: Path,
    options: AnalyzeOptions,
    workers: int,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """``analyze_files`` with the work partitioned by flow over ``workers`` processes (or Dask tasks)."""
    for p in paths:  # fail before writing anything, as the single process does
        if p == "-":
            raise UsageError("standard input cannot be read by several workers; give a file")
        open_capture(p, Counters()).close()
    if scheduler and scheduler != "local" and workers <= 1:
        workers = dask_threads(scheduler)
    n = max(1, workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    part_dir = None if scheduler else tempfile.mkdtemp(prefix=".netrum-parts-", dir=out_dir)
    try:
        tasks = make_tasks(paths, n, options, part_dir)
        results = run_dask(tasks, scheduler) if scheduler else run_local(tasks)
        results.sort(key=lambda r: r.k)
        if [r.k for r in results] != list(range(n)):
            raise RuntimeError(f"partitions missing from the results: {[r.k for r in results]} of {n}")
        rows = merge_transactions(results, out_dir / "transactions.csv")
    finally:
        if part_dir is not None:
            shutil.rmtree(part_dir, ignore_errors=True)
    return merge_results(results, out_dir, paths, rows, progress, options)


def merge_transactions(results: list[PartitionResult], path: Path) -> int:
    """transactions.csv from the parts: a streaming k-way merge on emission keys; written under a
    temporary name and renamed, in the exact format of ``TransactionWriter``."""
    streams: list[Iterator[Record]] = [read_part(r.part_path, r.part_bytes) for r in results]
    tmp = path.with_name(f".{path.name}.part")
    rows = 0
    with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        csv.writer(fh).writerow(TRANSACTION_COLUMNS)
        write = fh.write
        for _key, line in heapq.merge(*streams, key=itemgetter(0)):
            write(line)
            rows += 1
    os.replace(tmp, path)
    return rows


def merge_results(results: list[PartitionResult], out_dir: Path, paths: Sequence[str], rows: int,
                  progress: Callable[[int], None] | None = None,
                  options: AnalyzeOptions | None = None) -> RunResult:
    counters = Counters()
    aggregator = EndpointAggregator()
    consumers = ConsumerAggregator()
    problems: list[str] = []
    internal: list[str] = []
    linktypes: set[int] = set()
    for r in results:
        counters.merge(r.counters)
        aggregator.merge(r.aggregator)
        consumers.merge(r.consumers)
        problems.extend(r.problems)
        if r.internal_error:
            internal.append(r.internal_error)
        linktypes |= r.linktypes
    first = results[0].first_ts_ns
    last = results[0].last_ts_ns
    interrupted = any(r.interrupted for r in results)
    if progress is not None:
        progress(sum(os.path.getsize(p) for p in paths))
    return write_results(out_dir, paths, counters, aggregator, rows, first, last, problems + internal,
                         interrupted, linktypes, options or AnalyzeOptions(), consumers)
