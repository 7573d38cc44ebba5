"""The aggregate HTML report: self-contained, escaped, and working in a real headless Chromium."""

from __future__ import annotations

import copy
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from browser import Chromium, chromium_binary, click, open_page
from diffusers_attr.report import aggregate, write_summary_html


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.urls.append((tag, value))
        if tag == "script":
            self.scripts += 1


def test_page_is_self_contained_and_escaped(tmp_path, handbuilt_results):
    evil = copy.deepcopy(handbuilt_results)
    evil[0]["top"][0]["id"] = '<script>window.__pwned = 1</script>'
    evil[0]["top"][0]["metadata"]["licence"] = '<img src=x onerror="window.__pwned=1">'
    summary = aggregate(evil)
    path = write_summary_html(summary, tmp_path)  # a folder: the page goes inside, next to any index.html
    assert path == tmp_path / "attribution-report.html"
    page = path.read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(page)
    assert parsed.scripts == 1
    assert "<script>window" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    for tag, url in parsed.urls:
        assert url.startswith(("#", "data:image/png;base64,")), (tag, url)
    assert "unknown (top-K)" in page and "outside the top-K of each output" in page
    assert not list(tmp_path.glob("*.partial"))


def _column(browser: Chromium, table: str, column: int) -> list[float]:
    return browser.evaluate(
        f"[...document.querySelectorAll('{table} tbody tr')].map(r => Number(r.cells[{column}].dataset.sort))"
    )


def test_report_in_headless_chromium(planted_copy, tmp_path):
    binary = chromium_binary()
    (planted_copy / "image-009.attribution.json").write_text('{"format": "diffusers-attr", "top": [')
    with Image.open(planted_copy / "image-009.png") as image:  # no metadata embedded, and a corrupted sidecar
        image.copy().save(planted_copy / "image-009.png")
    summary = aggregate(planted_copy)
    assert summary.outputs == 9
    report = write_summary_html(summary, tmp_path / "out" / "report.html", title="Digits DDPM <attribution>")
    browser = Chromium(binary, Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
    try:
        open_page(browser, report.as_uri())
        assert browser.evaluate("document.title") == "Digits DDPM <attribution>"
        images = browser.evaluate("[...document.images].map(i => [i.getAttribute('src').slice(0, 22), i.complete, i.naturalWidth])")
        assert images and all(src == "data:image/png;base64," and done and width > 0 for src, done, width in images)
        assert browser.evaluate("document.querySelectorAll('figure.plot img').length") >= 4
        # each flagged output beside its training item with both heatmaps
        assert browser.evaluate("document.querySelectorAll('article.flag').length") == 2
        assert browser.evaluate("[...document.querySelectorAll('article.flag')].map(f => f.querySelectorAll('img').length)") == [4, 4]
        assert "planted-shifted" in browser.evaluate("document.querySelectorAll('article.flag')[1].textContent")
        # the skipped files are listed
        skipped = browser.evaluate("document.querySelector('#skipped').textContent")
        assert "image-009.png" in skipped and "image-009.attribution.json" in skipped

        # sorting the items table by a column, both ways; the rank column restores the order
        table = ".items-table"
        headers = browser.evaluate(f"[...document.querySelectorAll('{table} thead th')].map(h => h.textContent)")
        listed = headers.index("listed in")
        click(browser, f"{table} thead th:nth-child({listed + 1}) button")
        values = _column(browser, table, listed)
        assert values == sorted(values, reverse=True) and values[0] > values[-1]
        assert browser.evaluate(f"document.querySelectorAll('{table} thead th')[{listed}].getAttribute('aria-sort')") == "descending"
        click(browser, f"{table} thead th:nth-child({listed + 1}) button")
        assert _column(browser, table, listed) == sorted(values)
        click(browser, f"{table} thead th:nth-child(1) button")
        click(browser, f"{table} thead th:nth-child(1) button")
        ranks = _column(browser, table, 0)
        assert ranks == sorted(ranks) and ranks[0] == 1
        # a text column sorts too (keyboard: focus the header button and press Enter)
        browser.evaluate(f"document.querySelectorAll('{table} thead th')[2].querySelector('button').focus()")
        for kind in ("keyDown", "keyUp"):
            browser.page("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                                                    **({"text": "\r"} if kind == "keyDown" else {})})
        ids = browser.evaluate(f"[...document.querySelectorAll('{table} tbody tr')].map(r => r.cells[2].textContent)")
        assert ids == sorted(ids, key=str.lower, reverse=True)
        time.sleep(0.1)
        browser.evaluate("1")  # drain pending events
        assert browser.errors() == []
    finally:
        browser.close()
