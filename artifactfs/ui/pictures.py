"""Pictures drawn on the server as SVG: the lineage graph and the history plots of a run.

WHY these libraries: graph layout is a hard problem Graphviz's `dot` has solved for decades
(layered layout, edge routing, clickable nodes through `href`), and Debian ships it; the
`graphviz` package only writes its input language with correct quoting, and we call `dot`
ourselves so the call has a deadline. Line plots come from pygal, which draws SVG in pure Python
with no other dependency, so the page needs no charting JavaScript; its inline config script
(which only drives hover tooltips) is dropped, the page's Content-Security-Policy forbids it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from xml.etree import ElementTree

import graphviz
import pygal

from artifactfs.errors import ArtifactFSError
from artifactfs.ui.lineage import Graph, Node

DOT_TIMEOUT = 10.0
MAX_POINTS = 1000
"""Points per plotted series; longer histories are thinned to this many (the last kept)."""
MAX_PLOTS = 24

_SVG_NS = "http://www.w3.org/2000/svg"


class PictureUnavailable(ArtifactFSError):
    """A picture cannot be drawn here (Graphviz missing or failing); the page says why."""


def lineage_dot(graph: Graph, href: Callable[[Node], str]) -> str:
    """The graph in Graphviz's language: artifacts as boxes, runs as ellipses, the start bold."""
    dot = graphviz.Digraph(
        "lineage",
        graph_attr={"rankdir": "LR", "bgcolor": "transparent", "nodesep": "0.3"},
        node_attr={"fontname": "Helvetica,Arial,sans-serif", "fontsize": "11"},
        edge_attr={"color": "#888888", "arrowsize": "0.7"},
    )
    # Graphviz reads `a:b` in an edge as node `a`, port `b`: nodes get plain names here.
    names = {n.id: f"n{i}" for i, n in enumerate(sorted(graph.nodes.values(), key=lambda n: n.id))}
    for node in sorted(graph.nodes.values(), key=lambda n: n.id):
        start = node.id == graph.start
        attrs = {
            "href": href(node),
            "target": "_top",
            "tooltip": f"{node.entity}/{node.project}/{node.label}",
            "style": "filled,rounded" if node.kind == "artifact" else "filled",
            "shape": "box" if node.kind == "artifact" else "ellipse",
            "fillcolor": "#dbe9ff" if node.kind == "artifact" else "#ffe7c2",
            "penwidth": "2.5" if start else "1",
            "class": f"lineage-{node.kind}" + (" lineage-start" if start else ""),
        }
        sub = node.detail or ("run" if node.kind == "run" else "")
        label = f"{node.label}\n{sub}" if sub else node.label
        dot.node(names[node.id], label, **attrs)
    for a, b in sorted(graph.edges):
        dot.edge(names[a], names[b])
    return dot.source


def lineage_svg(graph: Graph, href: Callable[[Node], str]) -> str:
    """The lineage graph as an inline `<svg>` element (no XML prolog)."""
    exe = shutil.which("dot")
    if exe is None:
        raise PictureUnavailable("Graphviz is not installed (Debian: apt-get install graphviz)")
    try:
        done = subprocess.run(
            [exe, "-Tsvg"],
            input=lineage_dot(graph, href).encode(),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise PictureUnavailable(f"Graphviz took more than {DOT_TIMEOUT:.0f} s") from e
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise PictureUnavailable(f"Graphviz failed: {message[-1] if message else done.returncode}")
    svg = done.stdout.decode()
    return svg[svg.index("<svg") :]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = math.ceil(len(points) / MAX_POINTS)
    kept = points[::step]
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def history_series(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """metric -> (step, value) points, for every numeric key not starting with `_`. Rows
    without `_step` count up from 0, as W&B numbers them."""
    series: dict[str, list[tuple[float, float]]] = {}
    for i, row in enumerate(rows):
        step = _number(row.get("_step"))
        x = float(i) if step is None else step
        for key, value in row.items():
            y = _number(value)
            if y is not None and not str(key).startswith("_"):
                series.setdefault(str(key), []).append((x, y))
    return {k: _thin(v) for k, v in sorted(series.items())}


def integer_ticks(lo: float, hi: float, most: int = 8) -> list[int]:
    """At most `most` whole-number ticks from `lo` to `hi` at a 1-2-5 step: steps are counted,
    so an axis of steps must never read 0.2, 0.4."""
    span = max(1.0, hi - lo)
    ladder = [m * 10**e for e in range(16) for m in (1, 2, 5)]
    step = next(s for s in ladder if span / s <= most)
    first = math.ceil(lo / step) * step
    return list(range(int(first), int(hi) + 1, step))


def line_plot(title: str, points: list[tuple[float, float]]) -> str:
    """One metric against `_step` as an inline `<svg>`, without pygal's script. Steps are
    whole numbers, so the x axis gets whole-number ticks only."""
    xs = [x for x, _ in points]
    integral = bool(xs) and all(float(x).is_integer() for x in xs)
    axis: dict[str, Any] = {}
    if integral:
        axis = {
            "x_labels": integer_ticks(min(xs), max(xs)),
            "x_value_formatter": lambda x: f"{x:,.0f}",
        }
    chart = pygal.XY(
        **axis,
        js=[],
        width=520,
        height=260,
        explicit_size=True,
        title=title,
        x_title="_step",
        show_legend=False,
        show_dots=len(points) <= 30,
        dots_size=2.5,
        stroke_style={"width": 1.5},
        disable_xml_declaration=True,
        no_data_text="no values",
    )
    chart.add(title, points)
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if child.tag in ("script", f"{{{_SVG_NS}}}script"):
                parent.remove(child)
    ElementTree.register_namespace("", _SVG_NS)
    return ElementTree.tostring(tree, encoding="unicode")


def history_plots(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(metric, svg) for the first MAX_PLOTS metrics of a run's history."""
    return [(k, line_plot(k, pts)) for k, pts in list(history_series(rows).items())[:MAX_PLOTS]]
