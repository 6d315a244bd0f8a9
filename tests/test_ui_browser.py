"""The web page end to end in a real headless browser: Debian's chromium driven by selenium
through Debian's chromedriver (no browser download), one browser for the whole session.

Each test walks pages as a person would (clicking links), checks the elements that matter
(tables filled, the image preview decoded, the lineage SVG with a link per node) and takes a
screenshot of the page; set ARTIFACTFS_UI_SCREENSHOTS=DIR to keep them (docs/ui.png is one).
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

SCREENSHOTS = os.environ.get("ARTIFACTFS_UI_SCREENSHOTS")  # read before isolated_home clears it
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,720",
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
    out = Path(SCREENSHOTS or tmp_path)
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
    assert [th.text for th in _all(chrome, "#preview thead th")] == ["id", "score"]
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
    assert chrome.find_element(*_by("#diff-summary")).text == "1 added, 1 removed, 3 changed"
    assert [a.text for a in _all(chrome, "#added a")] == ["NOTES.md"]
    assert "metadata.rows" in chrome.find_element(*_by("#field-changes")).text
    _screenshot(chrome, "diff", tmp_path)
    chrome.get(base + "/a/acme/mnist/classifier:v0/files/")
    chrome.find_element(*_by("#version-info a.run")).click()
    assert "train" in chrome.find_element(*_by("#run-info")).text
    assert [a.text for a in _all(chrome, "#inputs a")] == ["acme/mnist/digits:v1"]
    assert [a.text for a in _all(chrome, "#outputs a")] == ["acme/mnist/classifier:v0"]
    assert "lr" in chrome.find_element(*_by("#config")).text
    if hasattr(af.Run, "log"):  # run history, once the API records run.log (issue 11)
        figures = _all(chrome, "#history figure.plot")
        assert sorted(f.get_attribute("data-metric") for f in figures) == ["acc", "loss"]
        assert all(f.find_elements(*_by("svg path")) for f in figures)
    _screenshot(chrome, "run", tmp_path)
