"""The layering rule, enforced: the sans-IO core imports no capture, export, batch or CLI module, and
each core layer imports only the layers below it (decode < flows < http)."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "netrum"

# layer -> modules it must never import
FORBIDDEN = {
    "decode": ("netrum.flows", "netrum.http", "netrum.capture", "netrum.export", "netrum.cli",
               "netrum.batch", "netrum.pipeline", "netrum.aggregate"),
    "flows": ("netrum.http", "netrum.capture", "netrum.export", "netrum.cli", "netrum.batch",
              "netrum.pipeline", "netrum.aggregate"),
    "http": ("netrum.capture", "netrum.export", "netrum.cli", "netrum.batch", "netrum.pipeline",
             "netrum.aggregate", "netrum.decode"),
}
IO_MODULES = ("socket", "time", "datetime", "os", "io", "mmap", "gzip", "subprocess")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_core_layers_import_downwards_only(layer: str) -> None:
    files = sorted((PKG / layer).glob("*.py"))
    assert files, f"no modules in netrum/{layer}"
    for f in files:
        bad = [m for m in _imports(f) if m.startswith(FORBIDDEN[layer]) and not (
            layer == "flows" and m == "netrum.decode.addr")]
        assert not bad, f"{f.name} imports {bad}"


@pytest.mark.parametrize("layer", ["decode", "flows", "http"])
def test_core_does_no_io_and_reads_no_clock(layer: str) -> None:
    for f in sorted((PKG / layer).glob("*.py")):
        bad = [m for m in _imports(f) if m.split(".")[0] in IO_MODULES]
        assert not bad, f"{f.name} imports {bad}"
