"""Scale-out: many cores on one big capture, many (rotated) files as one stream, a Dask cluster.

netrum partitions by flow affinity, not by byte range: a byte-range chunk cannot be exact for a
connection that crosses its boundary (the parser state, the connection's depth and id live in the chunk
before). Worker k of n reads the whole merged input and analyses only the connections given to k, like
Zeek cluster workers behind a flow load balancer or NIC receive-side scaling. Each connection is analysed
whole, by one worker, with the single process's code, so the merged output is identical to the single run
by construction. Who owns a connection (``netrum.pipeline.FlowAssigner``): the least-loaded worker when
its 4-tuple first appears, a deterministic function of the frame stream that every worker computes alike
(a hash of the 4-tuple split a capture of a hundred long keep-alive connections 55/45; this, 51/49).

- ``inputs``: a directory argument expands to the captures inside it (rotated ``tcpdump -G/-C`` files),
- ``partition``: the task one worker runs (``run_partition``), on any host that can read the captures,
- ``scan``: the partitioned read of one plain pcap (a skipped frame is never sliced out of the file),
- ``runner``: runs the tasks in a local process pool or on dask.distributed and merges the results
  (transactions by emission key, endpoint statistics by concatenation, counters by addition).
"""
