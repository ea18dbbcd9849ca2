#!/usr/bin/env python3
"""Print the README's reference tables (counters, notes, limits) from the code, so they never drift.

    .venv/bin/python scripts/readme_tables.py counters|notes|limits
"""
from __future__ import annotations

import sys
from dataclasses import fields

from netrum.counters import COUNTER_DOCS, NOTES
from netrum.limits import DEFAULT_LIMITS


def main(what: str) -> None:
    if what == "counters":
        print("| group | counter | meaning |\n|---|---|---|")
        for name, (group, doc) in COUNTER_DOCS.items():
            print(f"| {group} | `{name}` | {doc} |")
    elif what == "notes":
        print("| note | meaning |\n|---|---|")
        for name, doc in NOTES.items():
            print(f"| `{name}` | {doc} |")
    elif what == "limits":
        print("| limit | default | meaning |\n|---|---:|---|")
        for f in fields(DEFAULT_LIMITS):
            v = getattr(DEFAULT_LIMITS, f.name)
            shown = f"{v / 1e9:g} s" if f.name.endswith("_ns") else f"{v:,}"
            print(f"| `{f.name}` | {shown} | {f.metadata.get('doc', '')} |")
    else:
        raise SystemExit("usage: readme_tables.py counters|notes|limits")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
