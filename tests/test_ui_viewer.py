"""The dataset viewer parts of the web page: table pages and column statistics, image grids and
thumbnails, markdown, the usage snippets, counts and filters, and alias editing (its guards)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import uiseed

import artifactfs as af
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.ui import pictures, usage
from artifactfs.ui.data import Browser
from artifactfs.ui.gallery import Gallery
from artifactfs.ui.markdown import render_markdown
from artifactfs.ui.tables import PER_PAGE, Tables
from artifactfs.ui.thumbs import Thumbnails, thumbnail_key
from artifactfs.ui.web import create_app


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with uiseed.seeded_registry(tmp_path_factory.mktemp("ui-viewer")) as s:
        yield s


@pytest.fixture
def browser(seeded):
    b = Browser(seeded.resolver)
    yield b
    b.close()


def _log(seeded, tmp_path, files: dict[str, bytes], name: str = "tables"):
    """A version holding `files` (path -> bytes) in project `viewer`."""
    root = tmp_path / name
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    with af.init(project="viewer", registry=seeded.resolver.config.registry) as run:
        art = af.Artifact(name, type="dataset")
        art.add_dir(str(root))
        return run.log_artifact(art)._record


def _counting(browser):
    reads: list[tuple[int, int]] = []
    real = browser.read
    browser.read = lambda e, off, n: reads.append((off, n)) or real(e, off, n)
    return reads


def _texts(view):
    return [[c.text for c in row] for row in view.rows]


def test_parquet_pages_read_one_row_group(seeded, browser, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 4000
    table = pa.table({"id": list(range(n)), "blob": [bytes([i % 251]) * 2000 for i in range(n)]})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=250, compression="none")
    rec = _log(seeded, tmp_path, {"big.parquet": out.getvalue()})
    entry = browser.entry(rec, "big.parquet")
    tables = Tables(browser)
    tables.view(entry, page=1)  # statistics (a sample) computed once
    reads = _counting(browser)
    view = tables.view(entry, page=37)  # rows 1800..1849: row group 7
    assert [r[0] for r in _texts(view)] == [str(i) for i in range(1800, 1850)]
    assert view.total_rows == n and view.pages == n // PER_PAGE and view.more
    assert sum(size for _, size in reads) < entry.size / 8  # a footer and one group's chunks
    last = tables.view(entry, page=view.pages)
    assert _texts(last)[-1][0] == str(n - 1) and not last.more


def test_csv_pages_follow_quoted_newlines(seeded, browser, tmp_path):
    """Rows whose quoted fields hold newlines and doubled quotes page exactly as csv reads
    them, however far in, and the row count is known once the scan reached the end."""
    rows = [["id", "text", "n"]] + [
        [str(i), f'line {i}\nsecond "quoted" line' if i % 7 == 0 else f"plain {i}", str(i * 3)]
        for i in range(3000)
    ]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    tsv = "\n".join("\t".join(r) for r in [["a", "b"]] + [[str(i), str(-i)] for i in range(120)])
    rec = _log(seeded, tmp_path, {"q.csv": text.getvalue().encode(), "t.tsv": tsv.encode()})
    tables = Tables(browser)
    entry = browser.entry(rec, "q.csv")
    for page in (1, 2, 29, 60):
        view = tables.view(entry, page=page)
        first = (page - 1) * PER_PAGE
        want = [
            [c[:199] + "…" if len(c) > 200 else c for c in r]
            for r in rows[1 + first : 1 + first + PER_PAGE]
        ]
        assert _texts(view) == want, page
    assert view.total_rows == 3000 and not view.more
    assert [c.name for c in view.columns] == ["id", "text", "n"]
    assert view.columns[0].type == "int64"
    t = tables.view(browser.entry(rec, "t.tsv"), page=3)
    assert _texts(t) == [[str(i), str(-i)] for i in range(100, 120)] and t.format == "TSV"


def test_jsonl_and_arrow_pages(seeded, browser, tmp_path):
    import pyarrow as pa
    import pyarrow.ipc as ipc

    lines = "".join(
        json.dumps({"i": i, "tag": "even" if i % 2 == 0 else "odd"}) + "\n" for i in range(230)
    )
    table = pa.table({"x": list(range(500)), "y": [float(i) / 2 for i in range(500)]})
    files = {"a.jsonl": lines.encode()}
    for name, opener in (("f.arrow", ipc.new_file), ("s.arrows", ipc.new_stream)):
        sink = io.BytesIO()
        with opener(sink, table.schema) as w:
            for batch in table.to_batches(max_chunksize=64):
                w.write_batch(batch)
        files[name] = sink.getvalue()
    rec = _log(seeded, tmp_path, files)
    tables = Tables(browser)
    j = tables.view(browser.entry(rec, "a.jsonl"), page=5)
    assert _texts(j) == [[str(i), "even" if i % 2 == 0 else "odd"] for i in range(200, 230)]
    assert j.total_rows == 230 and [c.type for c in j.columns] == ["int64", "string"]
    assert [b.label for b in j.columns[1].stats.top] == ["even", "odd"]
    for name, form in (("f.arrow", "Arrow (file)"), ("s.arrows", "Arrow (stream)")):
        v = tables.view(browser.entry(rec, name), page=4)
        assert v.format == form and _texts(v)[0] == ["150", "75.0"], name
        assert v.columns[1].stats.maximum == 249.5


def test_columns_window_types_and_statistics(seeded, browser):
    rec = browser.version("acme", "pets", "pets", "v0").record
    tables = Tables(browser)
    view = tables.view(browser.entry(rec, "features.parquet"))
    assert len(view.all_columns) == 45 and len(view.columns) == 20
    assert [c.type for c in view.columns[:3]] == ["int64", "string", "double"]
    assert view.col_windows == [(0, 20), (20, 40), (40, 45)]
    ident, label, f0 = view.columns[:3]
    assert (ident.stats.minimum, ident.stats.maximum, ident.stats.nulls) == (0, 999, 0)
    assert ident.stats.mean == pytest.approx(499.5)
    assert sum(b.count for b in ident.stats.histogram) == 1000
    assert [(b.label, b.count) for b in label.stats.top] == [
        ("bird", 334),
        ("cat", 333),
        ("dog", 333),
    ]
    want_nulls = sum(1 for i in range(1000) if i % 17 == 0)
    assert f0.stats.nulls == want_nulls and f0.stats.rows == 1000
    assert "footer" in view.stats_note or view.stats_note == "all 1,000 rows"
    rest = tables.view(browser.entry(rec, "features.parquet"), page=3, col_start=40)
    assert [c.name for c in rest.columns] == [f"feature_{j}" for j in range(38, 43)]
    assert rest.row_start == 100 and _texts(rest)[0][0] == str((100 * 39) % 101 / 10)


def test_table_images_are_found_in_the_version(seeded):
    client = create_app(seeded.resolver).test_client()
    page = client.get("/a/acme/pets/pets:v0/files/predictions.table.json").text
    thumbs = re.findall(r'<img class="cellimg"[^>]*src="([^"]+)"', page)
    assert (
        len(thumbs) == 12
        and thumbs[0] == "/a/acme/pets/pets:v0/thumb/train/bird/bird-000.png?s=128"
    )
    assert client.get(thumbs[0]).mimetype == "image/webp"
    lines = client.get("/a/acme/pets/pets:v0/files/index.jsonl").text
    assert 'src="/a/acme/pets/pets:v0/thumb/train/cat/cat-000.png?s=128"' in lines


def test_image_grid_classes_and_neighbours(seeded, browser):
    rec = browser.version("acme", "pets", "pets", "v0").record
    gallery = Gallery(browser)
    images = gallery.images(rec, "train")
    assert len(images) == 31 and images.classes == [("bird", 5), ("cat", 14), ("dog", 12)]
    page = gallery.page(rec, "train", 2, per_page=10)
    assert [(i.label, i.name) for i in page.items][:2] == [
        ("cat", "cat-005.png"),
        ("cat", "cat-006.png"),
    ]
    assert gallery.page(rec, "", 1).total == 31  # the version's root holds them too
    assert gallery.neighbours(rec, "train/cat/cat-000.png") == (
        None,
        "train/cat/cat-001.png",
        1,
        14,
    )
    assert gallery.neighbours(rec, "train/cat/cat-013.png")[:3] == (
        "train/cat/cat-012.png",
        None,
        14,
    )
    html = create_app(seeded.resolver).test_client().get("/a/acme/pets/pets:v0/files/train").text
    assert html.count('loading="lazy"') == 31
    assert re.findall(r'class="class-chip"[^>]*>(\w+) <span>(\d+)', html) == [
        ("bird", "5"),
        ("cat", "14"),
        ("dog", "12"),
    ]


def test_thumbnails_are_made_once_and_bounded(seeded, browser, tmp_path):
    from PIL import Image

    rec = browser.version("acme", "pets", "pets", "v0").record
    thumbs = Thumbnails(browser, tmp_path / "thumbnails", max_bytes=10**9)
    entries = [browser.entry(rec, f"train/dog/dog-{i:03d}.png") for i in range(12)]
    first = thumbs.get(entries[0], 128)
    with Image.open(io.BytesIO(first)) as img:
        assert img.format == "WEBP" and img.size == (128, 96)  # 160 x 120, fitted
    reads = _counting(browser)
    assert thumbs.get(entries[0], 128) == first and reads == []  # from the cache's space
    for e in entries:
        thumbs.get(e, 256)
    files = sorted((tmp_path / "thumbnails").rglob("*.webp"))
    assert len(files) == 13
    thumbs.max_bytes = sum(f.stat().st_size for f in files) // 2
    assert thumbs.sweep() > 0
    assert (
        sum(f.stat().st_size for f in (tmp_path / "thumbnails").rglob("*.webp")) <= thumbs.max_bytes
    )


def test_next_grid_page_thumbnails_are_made_ahead(seeded, monkeypatch, tmp_path):
    """Viewing grid page 1 makes page 2's thumbnails in the background (and not page 3's), so
    paging on finds them on disk."""
    import time

    from artifactfs.ui import gallery

    monkeypatch.setattr(gallery, "PER_PAGE", 10)
    app = create_app(seeded.resolver)
    thumbs = app.extensions["artifactfs.thumbnails"]
    thumbs.root = tmp_path / "thumbnails"  # none made by other tests
    html = app.test_client().get("/a/acme/pets/pets:v0/files/train?gpage=1").text
    assert html.count('loading="lazy"') == 10
    browser = Browser(seeded.resolver)
    rec = browser.version("acme", "pets", "pets", "v0").record
    pages = [Gallery(browser).page(rec, "train", n, per_page=10).items for n in (1, 2, 3)]

    def made(items):
        return [
            thumbs.path(thumbnail_key(browser.entry(rec, it.path), 256)).exists() for it in items
        ]

    deadline = time.monotonic() + 30
    while not all(made(pages[1])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(made(pages[1])), made(pages[1])
    assert not any(made(pages[2])) and not any(made(pages[0]))  # page 1's: the browser asks
    reads = _counting(thumbs.browser)
    client = app.test_client()
    for it in pages[1]:
        assert client.get(f"/a/acme/pets/pets:v0/thumb/{it.path}?s=256").mimetype == "image/webp"
    assert reads == []  # page 2's thumbnails came from disk
    browser.close()


def test_markdown_is_rendered_and_sanitised():
    html = render_markdown(
        "# T\n\n**b** [ok](https://x.org) [bad](javascript:alert(1))\n\n<script>alert(1)</script>\n\n"
        '<img src=x onerror="alert(1)">\n\n| a |\n|---|\n| 1 |\n'
    )
    assert "<h1>T</h1>" in html and "<strong>b</strong>" in html and "<table>" in html
    assert 'href="https://x.org" rel="noopener noreferrer"' in html
    assert "<script" not in html and not re.search(r"href=\S*javascript", html)
    assert "<img" not in html  # raw HTML is text, escaped, never markup


def test_pages_show_descriptions_readmes_and_snippets(seeded):
    client = create_app(seeded.resolver).test_client()
    page = client.get("/a/acme/pets/pets:v0/files/").text
    assert "<strong>Pets</strong>: a tiny <em>ImageFolder</em> sample." in page
    assert re.search(r'id="readme">.*<h1>Pets</h1>.*<td>cat</td>', page, re.S)
    assert "run.use_artifact(&#34;acme/pets/pets:v0&#34;)" in page
    assert "artifactfs get acme/pets/pets:v0 --root ./data" in page
    assert "artifact://acme/pets/pets:v0/" in page
    record = seeded.resolver.registry.resolve(parse_artifact_name("acme/pets/pets:v0"))
    file_snips = {s.id: s.code for s in usage.snippets(record, "features.parquet")}
    assert (
        'pd.read_parquet("artifact://acme/pets/pets:v0/features.parquet")' in file_snips["fsspec"]
    )
    assert file_snips["mount"].endswith("acme/pets/pets:v0/features.parquet")


def test_counts_filters_and_run_names(seeded):
    client = create_app(seeded.resolver).test_client()
    home = client.get("/").text
    totals = re.sub(r"<[^>]+>", "", re.search(r'id="totals">(.*?)</p>', home, re.S).group(1))
    reg = seeded.resolver.registry
    projects = reg.projects("acme")
    colls = [(p, c) for p in projects for c in reg.collections("acme", p)]
    versions = [v for p, c in colls for v in reg.versions("acme", p, c)]
    assert totals.startswith(
        f"{len(projects)} projects · {len(colls)} collections · {len(versions)} versions"
    )
    assert {"mnist", "pets"} <= set(projects)
    only = client.get("/?q=pet").text
    assert 'href="/p/acme/pets"' in only and 'href="/p/acme/mnist"' not in only
    project = client.get("/p/acme/mnist?q=class").text
    assert (
        'href="/a/acme/mnist/classifier"' in project
        and 'href="/a/acme/mnist/digits"' not in project
    )
    pets = client.get("/p/acme/pets").text
    assert re.search(
        r'<a class="run" href="/r/acme/pets/\w+" title="run \w+">pets-import</a>', pets
    )
    version = client.get("/a/acme/pets/pets:v0/files/").text
    assert re.search(r"logged by</th><td><a class=\"run\"[^>]*>pets-import</a>", version)


def test_integer_steps_get_integer_ticks():
    """Steps are counted: the x axis of a run's plot reads 0, 5, 10, 15, never 0.2 or 2.5."""
    for n in (4, 20, 3000):
        svg = pictures.line_plot("loss", [(float(s), 1 / (s + 1)) for s in range(n)])
        axis = re.search(r'<g class="axis x[^>]*>(.*?)</g></g>', svg, re.S).group(1)
        ticks = re.findall(r"<text[^>]*>([^<]*)</text>", axis)
        assert ticks and all(re.fullmatch(r"\d[\d,]*", t) for t in ticks), (n, ticks)
    assert pictures.integer_ticks(0, 19) == [0, 5, 10, 15]
    assert pictures.integer_ticks(0, 3) == [0, 1, 2, 3]
