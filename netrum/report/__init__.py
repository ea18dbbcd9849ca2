"""Reports built on a finished run (issue 5): canary comparison, SLO checks, request export, HTML report.

Everything here reads a previous run's output directory (transactions.csv, endpoints.csv, health.csv) or
analyzes a capture into a temporary directory first (``netrum.report.runs.load_run``); none of it is in
the hot path, and the core never imports it.
"""
