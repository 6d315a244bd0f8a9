"""The web page end to end in a real headless browser: Debian's chromium driven by selenium
through Debian's chromedriver (no browser download), one browser for the whole session.

Each test walks pages as a person would (clicking links), checks the elements that matter
(tables filled, the image preview decoded, the lineage SVG with a link per node) and takes a
screenshot of the page as PNG into tests/artifacts/screenshots/ (gitignored; CI keeps it as the
suite's artefacts), or into ARTIFACTFS_UI_SCREENSHOTS=DIR when set. The README's pictures
(docs/ui-*.png) are copies of these.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
from pathlib import Path

import pytest
import uiseed

import artifactfs as af
from artifactfs.ui.server import Server

SCREENSHOTS = os.environ.get("ARTIFACTFS_UI_SCREENSHOTS") or str(
    Path(__file__).parent / "artifacts" / "screenshots"
)  # read before isolated_home clears it
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,860",
]


@pytest.fixture(scope="session")
def chrome(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/setup.sh test)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in [*CHROME_ARGS, f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"]:
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # selenium must never try to fetch a driver
        browser = webdriver.Chrome(
            options=options, service=webdriver.ChromeService(executable_path=driver)
        )
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with uiseed.seeded_registry(tmp_path_factory.mktemp("ui-browser")) as seeded:
        server = Server(seeded.resolver, "127.0.0.1", 0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            yield server.url.rstrip("/"), seeded
        finally:
            server.close()
            thread.join(10)


def _by(css):
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, css)


def _all(chrome, css):
    return chrome.find_elements(*_by(css))


def _click_link(chrome, text):
    from selenium.webdriver.common.by import By

    chrome.find_element(By.LINK_TEXT, text).click()


def _screenshot(chrome, name, tmp_path):
    """Save the page as PNG (in ARTIFACTFS_UI_SCREENSHOTS when set) and check it is one."""
    png = chrome.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 500
    out = Path(SCREENSHOTS)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.png").write_bytes(png)


def test_click_through_to_an_image_preview(chrome, site, tmp_path):
    base, _ = site
    chrome.get(base + "/")
    _click_link(chrome, "mnist")
    rows = _all(chrome, "#collections tbody tr")
    assert [r.find_element(*_by("td a")).text for r in rows] == ["classifier", "digits"]
    _screenshot(chrome, "project", tmp_path)
    _click_link(chrome, "digits")
    versions = _all(chrome, "#versions tbody tr")
    assert [r.find_element(*_by("td a")).text for r in versions] == ["v1", "v0"]
    assert [a.text for a in _all(chrome, "#versions .alias")] == ["latest", "stable"]
    _click_link(chrome, "v1")
    names = [a.text for a in _all(chrome, "#files tbody td:first-child a")]
    assert "images/" in names and "scores.parquet" in names
    _screenshot(chrome, "version", tmp_path)
    _click_link(chrome, "images/")
    _click_link(chrome, "digit-0.png")
    img = chrome.find_element(*_by("#preview-image"))
    chrome.execute_script("return arguments[0].decode()", img)  # wait for the bytes
    assert chrome.execute_script("return arguments[0].naturalWidth", img) == 64
    assert chrome.execute_script("return arguments[0].naturalHeight", img) == 40
    _screenshot(chrome, "image", tmp_path)


def test_table_previews(chrome, site, tmp_path):
    base, _ = site
    chrome.get(base + "/a/acme/mnist/digits:latest/files/scores.parquet")
    assert chrome.current_url.endswith("/digits:v1/files/scores.parquet")  # alias -> version
    assert [th.text for th in _all(chrome, "#preview thead .colname")] == ["id", "score"]
    assert [th.text for th in _all(chrome, "#preview thead .coltype")] == ["int64", "double"]
    assert len(_all(chrome, "#preview tbody tr")) == 50
    chrome.get(base + "/a/acme/mnist/digits:v1/files/preds.table.json")
    assert len(_all(chrome, "#preview tbody tr")) == 7
    _screenshot(chrome, "table", tmp_path)


def test_lineage_picture_links_every_node(chrome, site, tmp_path):
    base, seeded = site
    chrome.get(base + "/a/acme/mnist/digits:v1/files/")
    _click_link(chrome, "lineage")
    chrome.get(chrome.current_url + "?hops=3")
    nodes = _all(chrome, "#lineage svg g.node")
    assert len(nodes) == 6
    assert all(n.find_elements(*_by("a")) for n in nodes)
    _screenshot(chrome, "lineage", tmp_path)
    model = next(n for n in nodes if "classifier:v0" in n.text)
    chrome.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        model.find_element(*_by("a text")),
    )
    assert chrome.current_url.endswith("/a/acme/mnist/classifier:v0/files/")
    producer = chrome.find_element(*_by("#version-info a.run"))
    assert producer.text == seeded.runs["train"]


def test_diff_and_run_pages(chrome, site, tmp_path):
    base, _ = site
    chrome.get(base + "/a/acme/mnist/digits")
    chrome.find_element(*_by("form.diffpick button")).click()
    assert _find(chrome, "#diff-summary").text == "1 added, 1 removed, 3 changed"
    assert [a.text for a in _all(chrome, "#added a")] == ["NOTES.md"]
    assert "metadata.rows" in chrome.find_element(*_by("#field-changes")).text
    _screenshot(chrome, "diff", tmp_path)
    chrome.get(base + "/a/acme/mnist/classifier:v0/files/")
    chrome.find_element(*_by("#version-info a.run")).click()
    assert "train" in _find(chrome, "#run-info").text
    assert [a.text for a in _all(chrome, "#inputs a")] == ["acme/mnist/digits:v1"]
    assert [a.text for a in _all(chrome, "#outputs a")] == ["acme/mnist/classifier:v0"]
    assert "lr" in chrome.find_element(*_by("#config")).text
    if hasattr(af.Run, "log"):  # run history, once the API records run.log (issue 11)
        figures = _all(chrome, "#history figure.plot")
        assert sorted(f.get_attribute("data-metric") for f in figures) == ["acc", "loss"]
        assert all(f.find_elements(*_by("svg path")) for f in figures)
    _screenshot(chrome, "run", tmp_path)


def _wait(chrome, condition, timeout=10):
    """Until `condition()` is true. A click that submits a form or follows a link may return
    before the next page is there: an element not found yet, or one of the old page that went
    away while being read, means "not yet" (both seen in Debian 13's Chromium)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(chrome, timeout, ignored_exceptions=ignored).until(lambda d: condition())


def _find(chrome, css):
    """The element, waiting for it to be there (after a click that loads a page)."""
    return _wait(chrome, lambda: chrome.find_element(*_by(css)))


def _decoded(chrome, img):
    return chrome.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)


def test_image_grid_classes_and_previous_next(chrome, site, tmp_path):
    base, _ = site
    chrome.get(base + "/?q=")
    chrome.find_element(*_by("form.filter input")).send_keys("pet")  # live filter (ui.js)
    shown = [r.text for r in _all(chrome, "#projects tbody tr") if r.is_displayed()]
    assert len(shown) == 1 and "pets" in shown[0]
    _screenshot(chrome, "home", tmp_path)
    _click_link(chrome, "pets")
    assert chrome.find_element(*_by("#counts")).text.startswith("1 collection · 1 version")
    assert [a.text for a in _all(chrome, "#runs a.run")] == ["pets-import"]  # as named
    _click_link(chrome, "v0")
    assert chrome.find_element(*_by("#description strong")).text == "Pets"  # markdown
    assert chrome.find_element(*_by("#description code")).text == "README.md"
    assert chrome.find_element(*_by("#readme h1")).text == "Pets"
    _click_link(chrome, "train/")
    thumbs = _all(chrome, "#grid img")
    assert len(thumbs) == 31 and all(t.get_attribute("loading") == "lazy" for t in thumbs)
    _wait(chrome, lambda: _decoded(chrome, thumbs[0]))
    assert "/thumb/train/bird/bird-000.png?s=256" in thumbs[0].get_attribute("src")
    assert chrome.execute_script("return arguments[0].naturalWidth", thumbs[0]) == 160
    labels = [f.text for f in _all(chrome, "#grid figcaption .label")]
    assert labels[:5] == ["bird"] * 5 and labels[5] == "cat"
    _screenshot(chrome, "grid", tmp_path)
    chrome.find_element(*_by("#classes a.class-chip:nth-of-type(2)")).click()  # cat
    _wait(chrome, lambda: chrome.current_url.endswith("/files/train/cat"))
    assert len(_all(chrome, "#grid img")) == 14
    _all(chrome, "#grid a")[0].click()
    assert _find(chrome, "#image-position").text == "1 of 14"
    chrome.find_element(*_by("#next-image")).click()
    _wait(chrome, lambda: chrome.current_url.endswith("/train/cat/cat-001.png"))
    from selenium.webdriver.common.keys import Keys

    chrome.find_element(*_by("body")).send_keys(Keys.ARROW_LEFT)
    _wait(chrome, lambda: chrome.current_url.endswith("/train/cat/cat-000.png"))
    img = chrome.find_element(*_by("#preview-image"))
    _wait(chrome, lambda: _decoded(chrome, img))
    zoom = chrome.find_element(*_by("#zoom"))
    zoom.click()
    assert "zoomed" in img.get_attribute("class") and zoom.text == "fit"
    assert chrome.execute_script("return arguments[0].clientWidth", img) == 160  # natural size
    _screenshot(chrome, "image-preview", tmp_path)
    zoom.click()
    assert "zoomed" not in img.get_attribute("class")


def test_table_pages_columns_and_statistics(chrome, site, tmp_path):
    base, _ = site
    chrome.get(base + "/a/acme/pets/pets:latest/files/features.parquet")
    summary = chrome.find_element(*_by("#table-summary")).text
    assert "rows 1\u201350 of 1,000" in summary and "showing 20 of 45 columns" in summary
    assert len(_all(chrome, "#table thead .colname")) == 20
    assert len(_all(chrome, "#table .hist .bar")) > 20 and _all(chrome, "#table .topv")
    assert chrome.find_element(*_by("#stats-note")).text.startswith("column statistics:")
    _screenshot(chrome, "table-stats", tmp_path)
    chrome.find_element(*_by("#table-pager a[rel=next]")).click()
    _wait(chrome, lambda: "rows 51\u2013100" in chrome.find_element(*_by("#table-summary")).text)
    assert _all(chrome, "#table tbody tr td")[0].text == "50"
    _click_link(chrome, "41\u201345")
    assert [c.text for c in _all(chrome, "#table thead .colname")] == [
        f"feature_{j}" for j in range(38, 43)
    ]
    assert "rows 51\u2013100" in chrome.find_element(*_by("#table-summary")).text  # same rows
    chrome.get(base + "/a/acme/pets/pets:v0/files/predictions.table.json")
    cells = _all(chrome, "#table img.cellimg")
    assert len(cells) == 12
    _wait(chrome, lambda: all(_decoded(chrome, c) for c in cells))
    _screenshot(chrome, "table-images", tmp_path)


def test_usage_snippets_copy(chrome, site, tmp_path):
    base, _ = site
    chrome.get(base + "/a/acme/pets/pets:v0/files/")
    code = chrome.find_element(*_by("#code-python")).text
    assert 'run.use_artifact("acme/pets/pets:v0")' in code and "artifact.download()" in code
    assert "artifactfs get acme/pets/pets:v0" in chrome.find_element(*_by("#code-cli")).text
    button = chrome.find_element(*_by("#use-cli button.copy"))
    button.click()
    _wait(chrome, lambda: button.text in ("copied", "selected: Ctrl-C"))
    if button.text == "selected: Ctrl-C":  # no clipboard permission: the code is selected
        assert "artifactfs get" in chrome.execute_script("return String(window.getSelection())")
    _screenshot(chrome, "usage", tmp_path)


def test_alias_editing_in_the_browser(chrome, tmp_path_factory, tmp_path):
    """Chromium sends the forms with its real Origin and the session's token: add and remove
    work from the page (the guards themselves: test_ui_edits.py)."""
    with uiseed.seeded_registry(tmp_path_factory.mktemp("ui-edits")) as seeded:
        server = Server(seeded.resolver, "127.0.0.1", 0, allow_edits=True)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            chrome.get(server.url + "a/acme/mnist/digits:v1/files/")
            field = chrome.find_element(*_by("#add-alias input[name=alias]"))
            field.send_keys("prod")
            chrome.find_element(*_by("#add-alias button")).click()
            _wait(chrome, lambda: "prod" in [a.text for a in _all(chrome, "#alias-editor .alias")])
            assert seeded.resolver.registry.aliases("acme", "mnist", "digits")["prod"] == 1
            move = chrome.find_element(*_by("#alias-editor li.elsewhere button"))  # stable, v0
            move.click()
            _wait(chrome, lambda: not _all(chrome, "#alias-editor li.elsewhere"))
            _screenshot(chrome, "alias-editor", tmp_path)
            chrome.find_element(*_by("#alias-editor form.remove-alias button")).click()
            _wait(chrome, lambda: "prod" not in [a.text for a in _all(chrome, "h1 .alias")])
            seeded.resolver.registry.invalidate()
            aliases = seeded.resolver.registry.aliases("acme", "mnist", "digits")
            assert "prod" not in aliases and aliases["stable"] == 1
        finally:
            server.close()
            thread.join(10)
