"""Every counter incremented anywhere in netrum has a stable, documented name."""
import re
from pathlib import Path

from netrum.counters import COUNTER_DOCS, NOTES, Counters

PKG = Path(__file__).resolve().parents[1] / "netrum"
NAME = re.compile(r"""\[\s*["']([a-z][a-z0-9_]+)["']\s*\]\s*(?:\+=|-=|=(?!=))""")


def test_every_counted_name_is_documented() -> None:
    used: dict[str, str] = {}
    for f in PKG.rglob("*.py"):
        text = f.read_text()
        if "counters" not in text and "Counters" not in text:
            continue
        for m in NAME.finditer(text):
            used.setdefault(m.group(1), f.name)
    # names assigned into other dicts (facts, headers) are not counters: keep the check to counter-like names
    prefixes = tuple({n.split("_")[0] + "_" for n in COUNTER_DOCS})
    undocumented = {n: f for n, f in used.items() if n.startswith(prefixes) and n not in COUNTER_DOCS}
    assert not undocumented, undocumented


def test_names_are_snake_case_and_grouped() -> None:
    for name, (group, doc) in COUNTER_DOCS.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]+", name), name
        assert group in {"capture", "decode", "tcp", "http"}, name
        assert doc
    for name in NOTES:
        assert re.fullmatch(r"[a-z][a-z0-9_]+", name), name


def test_counters_merge_and_missing() -> None:
    a = Counters()
    a["tcp_gap"] += 1
    assert a["never_seen"] == 0
    b = Counters({"tcp_gap": 2, "http_resync": 1})
    a.merge(b)
    assert a == {"tcp_gap": 3, "http_resync": 1}
    assert a.nonzero() == {"tcp_gap": 3, "http_resync": 1}


def test_readme_documents_every_counter_note_and_limit() -> None:
    from dataclasses import fields

    from netrum.limits import Limits

    readme = (PKG.parent / "README.md").read_text()
    missing = [n for n in [*COUNTER_DOCS, *NOTES, *(f.name for f in fields(Limits))] if f"`{n}`" not in readme]
    assert not missing, f"README lacks {missing}: regenerate with scripts/readme_tables.py"
