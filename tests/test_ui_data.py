"""The web page's data layer (artifactfs/ui): listings, file tree, previews, diff, lineage, runs,
and the pictures drawn from them. No HTTP here; tests/test_ui_web.py covers the routes and
tests/test_ui_browser.py the pages in a real browser."""

from __future__ import annotations

import base64
import hashlib
import re
from types import SimpleNamespace

import pytest
import uiseed

import artifactfs as af
from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver.manifest import Manifest, ManifestEntry
from artifactfs.resolver.resolver import Resolver
from artifactfs.resolver.version_index import index_file, open_version_index
from artifactfs.ui import pictures, previews, runs, tables
from artifactfs.ui.data import Browser
from artifactfs.ui.lineage import lineage


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with uiseed.seeded_registry(tmp_path_factory.mktemp("ui-data")) as s:
        yield s


@pytest.fixture
def browser(seeded):
    b = Browser(seeded.resolver)
    yield b
    b.close()


def _digest(seed: object) -> str:
    """A well-formed base64 MD5 (manifests with anything else are refused, manifest_check)."""
    return base64.b64encode(hashlib.md5(str(seed).encode()).digest()).decode()


def _version(browser, name="digits", spec="latest"):
    return browser.version("acme", "mnist", name, spec).record


def test_collections_and_versions(browser):
    page = browser.collections("acme", "mnist")
    by_name = {c.name: c for c in page.items}
    assert sorted(by_name) == ["classifier", "digits"]
    digits = by_name["digits"]
    assert (digits.type, digits.version_count, digits.latest) == ("dataset", 2, 1)
    assert digits.size == _version(browser).size and digits.updated
    versions = browser.versions("acme", "mnist", "digits", per_page=1)
    assert [v.label for v in versions.items] == ["v1"] and versions.pages == 2
    assert versions.items[0].aliases == ["latest"]
    older = browser.versions("acme", "mnist", "digits", number=2, per_page=1).items[0]
    assert older.label == "v0" and older.aliases == ["stable"]
    assert older.record.metadata == {"rows": 120, "source": "synthetic"}
    with pytest.raises(ArtifactNotFoundError):
        browser.collections("acme", "nosuchproject")


def test_listing_folders_totals_and_missing(browser):
    rec = _version(browser)
    root = {r.name: r for r in browser.listing(rec).items}
    assert root["images"].is_dir and root["images"].files == 2
    png0 = uiseed.png_bytes()
    assert root["images"].size == len(png0) + len(uiseed.png_bytes(32, 32))
    assert not root["labels.csv"].is_dir and root["labels.csv"].digest
    assert [r.name for r in browser.listing(rec, "images").items] == ["digit-0.png", "digit-1.png"]
    with pytest.raises(ArtifactNotFoundError):
        browser.listing(rec, "nosuch")
    with pytest.raises(ArtifactNotFoundError):
        browser.entry(rec, "images")  # a folder is not a file
    assert browser.read(browser.entry(rec, "images/digit-0.png"), 0, 1 << 20) == png0


def test_big_folder_pages_and_shared_index(seeded):
    """A folder of 450 files is listed by page from the shared on-disk index; a second Browser
    (another process, or the mount) opens the same index file instead of rebuilding it."""
    reg = seeded.resolver.registry
    manifest = Manifest(ManifestEntry(f"d/f{i:04d}.bin", _digest(i), i) for i in range(450))
    rec = reg.commit("acme", "big", "many", "dataset", manifest)
    b = Browser(seeded.resolver)
    try:
        page = b.listing(rec, "d", number=3, per_page=200)
        assert page.total == 450 and page.pages == 3 and not page.has_next
        assert [r.name for r in page.items][:2] == ["f0400.bin", "f0401.bin"] and len(
            page.items
        ) == 50
        assert b.listing(rec).items[0].files == 450
        assert b.listing(rec).items[0].size == sum(range(450))
    finally:
        b.close()
    assert index_file(b.index_dir, rec).is_file()
    again, how = open_version_index(reg, rec, b.index_dir)
    assert how == "cached" and len(again) == 450
    again.close()


def test_diff_files_and_fields(browser):
    d = browser.diff(_version(browser, spec="v0"), _version(browser, spec="v1"))
    assert d.added == ["NOTES.md"] and d.removed == ["README.txt"]
    assert d.changed == ["config.yaml", "labels.csv", "stats.json"]
    fields = {c.field: (c.old, c.new) for c in d.fields}
    assert fields["metadata.rows"] == (120, 121)
    assert fields["description"] == ("digits sample, release 0", "digits sample, release 1")
    assert "metadata.source" not in fields and "type" not in fields
    same = browser.diff(_version(browser, spec="v1"), _version(browser, spec="v1"))
    assert (same.added, same.removed, same.changed, same.fields) == ([], [], [], [])


def test_diff_ignores_birth_artifact_id(seeded):
    reg = seeded.resolver.registry
    a = reg.commit(
        "acme", "big", "births", "dataset", Manifest([ManifestEntry("x", _digest("x"), 1)])
    )
    entries = [
        ManifestEntry("x", _digest("x"), 1, birth_artifact_id="other"),
        ManifestEntry("y", _digest("y"), 2),
    ]
    b = reg.commit("acme", "big", "births", "dataset", Manifest(entries))
    d = Browser(seeded.resolver).diff(a, b)
    assert (d.added, d.removed, d.changed) == (["y"], [], [])


def _names(p):
    return [c.name for c in p.table.columns]


def _texts(p, i):
    return [c.text for c in p.table.rows[i]]


@pytest.mark.parametrize(
    ("path", "kind", "check"),
    [
        ("labels.csv", "table", lambda p: _names(p) == ["id", "label", "pixels"] and p.table.total_rows == 121),
        ("scores.parquet", "table", lambda p: _names(p) == ["id", "score"] and p.table.total_rows == 200 and _texts(p, 1) == ["1", "0.005"]),
        ("preds.table.json", "table", lambda p: p.table.format == "W&B Table" and _texts(p, 3) == ["3", "3"]),
        ("stats.json", "text", lambda p: p.language == "json" and '\n  "mean": 0.13' in p.text),
        ("config.yaml", "text", lambda p: p.language == "yaml" and p.text.startswith("classes: 10")),
        ("NOTES.md", "markdown", lambda p: p.html.startswith("<h1>digits</h1>")),
        ("images/digit-0.png", "image", lambda p: True),
    ],
)  # fmt: skip
def test_previews(browser, path, kind, check):
    p = previews.preview(browser, browser.entry(_version(browser), path))
    assert p.kind == kind and check(p), p
    assert p.table is None or len(p.table.rows) <= tables.PER_PAGE


def test_previews_read_only_a_head(seeded, tmp_path):
    """A big CSV's first page reads its sample head and one chunk of row index, not the whole
    file; a binary file has no preview."""
    big = tmp_path / "big.csv"
    big.write_text("a,b\n" + "".join(f"{i},{'x' * 50}\n" for i in range(150_000)))
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 8)
    with af.init(project="heads", registry=seeded.resolver.config.registry) as run:
        art = af.Artifact("heads", type="dataset")
        art.add_file(str(big))
        art.add_file(str(blob))
        rec = run.log_artifact(art)._record
    b = Browser(seeded.resolver)
    reads: list[tuple[int, int]] = []
    real_read = b.read
    b.read = lambda e, off, n: reads.append((off, n)) or real_read(e, off, n)  # type: ignore[method-assign]
    p = previews.preview(b, b.entry(rec, "big.csv"))
    assert p.kind == "table" and p.table.total_rows is None and p.table.more
    assert len(p.table.rows) == 50 and _texts(p, 0)[0] == "0"
    assert "first" in p.table.stats_note  # a sample, and the page says so
    assert big.stat().st_size > 8 << 20 and sum(n for _, n in reads) < 3 << 20
    assert previews.preview(b, b.entry(rec, "blob.bin")).kind == "none"


def test_lineage_walks_hops_both_ways(seeded, browser):
    rec = _version(browser)
    one = lineage(seeded.resolver.registry, rec, hops=1)
    kinds = sorted((n.kind, n.detail) for n in one.nodes.values())
    assert kinds == [("artifact", "dataset"), ("run", "prepare"), ("run", "train")]
    three = lineage(seeded.resolver.registry, rec, hops=3)
    labels = {n.label for n in three.nodes.values()}
    assert {"digits:v0", "digits:v1", "classifier:v0", seeded.runs["eval"]} <= labels
    edge_labels = {(three.nodes[a].label, three.nodes[b].label) for a, b in three.edges}
    assert ("digits:v1", seeded.runs["train"]) in edge_labels  # input: artifact -> run
    assert (seeded.runs["train"], "classifier:v0") in edge_labels  # output: run -> artifact
    small = lineage(seeded.resolver.registry, rec, hops=3, max_nodes=2)
    assert len(small.nodes) == 2 and small.truncated
    assert all(a in small.nodes and b in small.nodes for a, b in small.edges)


def test_lineage_svg_has_a_linked_node_each(seeded, browser):
    graph = lineage(seeded.resolver.registry, _version(browser), hops=3)
    svg = pictures.lineage_svg(graph, lambda n: f"/x/{n.name}")
    assert svg.startswith("<svg")
    assert len(re.findall(r'<g id="node\d+" class="node', svg)) == len(graph.nodes) == 6
    assert svg.count('xlink:href="/x/') == len(graph.nodes)
    assert len(re.findall(r'class="edge"', svg)) == len(graph.edges)


def test_history_plots():
    rows = [
        {"_step": s, "_runtime": s * 0.1, "loss": 1 / (s + 1), "ok": True, "tag": "x"}
        for s in range(3000)
    ]
    rows.append({"_step": 3000, "acc": float("nan")})
    series = pictures.history_series(rows)
    assert list(series) == ["loss"]
    assert len(series["loss"]) <= pictures.MAX_POINTS + 1 and series["loss"][-1] == (
        2999.0,
        1 / 3000,
    )
    ((name, svg),) = pictures.history_plots(rows)
    assert name == "loss" and svg.startswith("<svg") and "<script" not in svg
    assert 'class="line reactive nofill"' in svg or "line" in svg


def test_run_info_from_the_api(seeded):
    api = af.Api(resolver=seeded.resolver)
    info = runs.run_info(api, "acme", "mnist", seeded.runs["train"])
    assert info.job_type == "train" and info.config == {"lr": 0.01, "epochs": 3}
    assert [(a.name, a.version) for a in info.inputs] == [("digits", 1)]
    assert [(a.label, a.type) for a in info.outputs] == [("classifier:v0", "model")]
    with pytest.raises(ArtifactNotFoundError):
        runs.run_info(api, "acme", "mnist", "nosuchrun")


def test_run_info_shows_what_a_run_has():
    """W&B's public Run shape, partly: what is missing is listed, never an error."""
    full = SimpleNamespace(
        id="r1", name="r1", job_type="train", state="finished", summary={"loss": 0.1, "_step": 3},
        config={"lr": 1}, tags=["a"], created_at="2026-01-01T00:00:00",
        history=lambda samples=500, pandas=True: [{"_step": 0, "loss": 1.0, "n": samples}],
        logged_artifacts=lambda: [], used_artifacts=lambda: [],
    )  # fmt: skip
    orders = []
    api = SimpleNamespace(
        run=lambda path: full, runs=lambda path, order="+created_at": orders.append(order) or [full]
    )
    info = runs.run_info(api, "e", "p", "r1")
    assert info.state == "finished" and info.summary == {"loss": 0.1} and info.tags == ["a"]
    assert info.history == [{"_step": 0, "loss": 1.0, "n": runs.HISTORY_SAMPLES}]
    assert info.missing == []
    listed = runs.project_runs(api, "e", "p")
    assert orders == ["-created_at"] and [r.id for r in listed or []] == ["r1"]
    bare = SimpleNamespace(id="r2", config={})
    info = runs.run_info(SimpleNamespace(run=lambda path: bare), "e", "p", "r2")
    assert set(info.missing) == {
        "state",
        "summary",
        "history",
        "used_artifacts",
        "logged_artifacts",
    }
    assert runs.project_runs(SimpleNamespace(), "e", "p") is None


def test_browser_on_each_backend(registry_url, tmp_path):
    """Listing, a preview and a diff read the same through the embedded and the S3 registry."""
    uiseed.seed(tmp_path / "src")
    resolver = Resolver.open()
    b = Browser(resolver)
    try:
        v0, v1 = (b.version("acme", "mnist", "digits", s).record for s in ("v0", "v1"))
        assert len(b.listing(v1).items) == 7
        p = previews.preview(b, b.entry(v1, "scores.parquet"))
        assert p.kind == "table" and p.table.total_rows == 200
        assert b.diff(v0, v1).added == ["NOTES.md"]
    finally:
        b.close()
        resolver.close()
