"""The layout's promises, checked from the code's own imports (issue 9, docs/ARCHITECTURE.md).

* No import cycles anywhere in the package, counting every `artifactfs.*` import: module level,
  inside functions, and under TYPE_CHECKING (a cycle hidden in a function is still a cycle a
  reader has to untangle).
* Data flows one way between the rooms: fusefs -> drafts -> resolver -> cache -> config/errors;
  the Python front ends sdk/ and fsspec/ sit beside fusefs/ and use resolver/ and cache/.
* The drafts engine runs without FUSE: nothing in drafts/ (nor below it) imports mfusepy.
* Modules stay small enough to read in one sitting.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "artifactfs"
MAX_LINES = 450

# What each room may import from the package (besides itself). The top-level modules of
# artifactfs/ that everything may use: errors, config, fsutil, progress, logsafe (the log
# redaction every handler carries).
BASE = {
    "artifactfs",
    "artifactfs.errors",
    "artifactfs.settings",
    "artifactfs.fsutil",
    "artifactfs.logsafe",
}
MAY_IMPORT = {
    "cache": {"cache"},
    "resolver": {"resolver", "cache"},
    "drafts": {"drafts", "resolver", "cache"},
    "fusefs": {"fusefs", "drafts", "resolver", "cache"},
    # The Python front ends: the fsspec file system and the W&B-style SDK (which reuses the
    # fsspec room's name parsing). Neither needs FUSE or the drafts engine.
    "fsspec": {"fsspec", "resolver", "cache"},
    "sdk": {"sdk", "fsspec", "resolver", "cache"},
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    paths = [
        Path(top, name)
        for top, _, names in os.walk(PACKAGE, followlinks=True)  # the rooms are symlinks
        for name in names
        if name.endswith(".py")
    ]
    for path in sorted(paths):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = ["artifactfs", *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module a dotted import name lands in (`artifactfs.cache.BlobCache` -> the package)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            target = _resolve(name) if name.startswith("artifactfs") else None
            if target and target != module:
                out.add(target)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else None


def test_no_import_cycles() -> None:
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("room", sorted(MAY_IMPORT))
def test_rooms_import_one_way(room: str) -> None:
    allowed = MAY_IMPORT[room]
    wrong = []
    for module, targets in GRAPH.items():
        if _room(module) != room:
            continue
        for target in targets:
            if target in BASE or _room(target) in allowed:
                continue
            wrong.append(f"{module} -> {target}")
    assert not wrong, f"{room}/ imports against the data flow: {wrong}"


def test_drafts_engine_does_not_need_fuse() -> None:
    users = [
        m
        for m, p in MODULES.items()
        if _room(m) in ("drafts", "resolver", "cache") and "mfusepy" in p.read_text()
    ]
    assert not users, f"modules below the FUSE front end that import mfusepy: {users}"


def test_modules_read_in_one_sitting() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
