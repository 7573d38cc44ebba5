"""The static HTML report of a run folder: content, links, escaping, skipped files, and a real browser.

One real run folder (tiny DDPM, 2 images, 12 training items, all listed, maps for the top 3) is
generated once per module; tests that damage it work on copies. The browser test drives Debian's
headless Chromium over the Chrome DevTools Protocol (``websocket-client``).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch
from browser import Chromium, center, chromium_binary, open_page
from PIL import Image

from diffusers_attr import AttributedPipeline, AttributionIndex, read_attribution
from diffusers_attr.report import scan_run, write_run_report

N_TRAIN = 12
MAPS = 3
EVIL_ID = '<script>window.__pwned = "id"</script>'
EVIL_CAPTION = '<img src=x onerror="window.__pwned=1"> & "quoted" </textarea>'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tiny_pipelines import tiny_ddpm_pipeline

    torch.manual_seed(0)
    images = torch.rand(N_TRAIN, 1, 8, 8) * 2 - 1
    ids = [EVIL_ID if i == 0 else f"train-{i:02d}" for i in range(N_TRAIN)]
    metadata = [{"label": i % 10, "caption": EVIL_CAPTION if i == 0 else f"digit {i % 10}"} for i in range(N_TRAIN)]
    index = AttributionIndex.from_images(images, ids=ids, metadata=metadata, progress=False)
    pipe = AttributedPipeline(tiny_ddpm_pipeline(), index, patch_size=3, top=N_TRAIN, maps=MAPS, progress=False)
    directory = tmp_path_factory.mktemp("run")
    pipe(num_inference_steps=2, batch_size=2).save(directory)
    return directory


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("index.html"))
    return copy


class _Links(HTMLParser):
    """Every URL-like attribute of a page, and the text of its <script> elements."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.cards = 0
        self.scripts = 0
        self.items = 0
        self.img_srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href", "data-query", "data-source"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if tag == "img":
            self.img_srcs.append(attrs.get("src") or "")
        if tag == "article" and "card" in (attrs.get("class") or "").split():
            self.cards += 1
        if tag == "button" and "item" in (attrs.get("class") or "").split():
            self.items += 1
        if tag == "script":
            self.scripts += 1


def _parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


def test_report_lists_every_image_in_file_order(run_dir):
    path = write_run_report(run_dir)
    assert path == run_dir.resolve() / "index.html"
    page = path.read_text(encoding="utf-8")
    parsed = _parse(page)
    assert parsed.cards == 2
    assert page.index('id="img-image-000"') < page.index('id="img-image-001"')
    meta = read_attribution(run_dir / "image-000.png")
    assert meta["model"] in page and meta["scheduler"] in page
    assert f"{N_TRAIN} items" in page
    assert "patch_size=3" in page
    # every top item has a thumbnail button with its share as a percentage; k > M says no maps were kept
    assert parsed.items == 2 * N_TRAIN
    assert f"{meta['top'][0]['share'] * 100:.1f}%" in page
    assert f"No maps were kept for rank {MAPS + 1}" in page
    assert "Skipped files" not in page
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".partial")]


def test_report_links_only_to_files_in_the_folder(run_dir):
    page = write_run_report(run_dir, title="A & B").read_text(encoding="utf-8")
    parsed = _parse(page)
    assert "<title>A &amp; B</title>" in page
    files = [url for url in parsed.urls if not url.startswith("#")]
    assert files and all(parsed.img_srcs)
    for url in files:
        parts = urlparse(url)
        assert not parts.scheme and not parts.netloc and "/" not in url, url
        assert (run_dir / unquote(parts.path)).is_file(), url
    for k in range(1, MAPS + 1):  # the maps of the top M items are linked
        assert f"image-000.heatmap-{k}.png" in files and f"image-000.source-{k}.png" in files
    assert "image-000.collage.png" in files and f"image-001.train-{N_TRAIN}.png" in files


def test_report_escapes_ids_and_captions(run_dir):
    page = write_run_report(run_dir).read_text(encoding="utf-8")
    parsed = _parse(page)
    assert parsed.scripts == 1  # the report's own script only
    assert "<script>window" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
    assert "<img src=x" not in page and "</textarea>" not in page
    assert "&lt;script&gt;window.__pwned" in page
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt; &amp; &quot;quoted&quot;" in page


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="no images with diffusers-attr metadata in"):
        write_run_report(tmp_path)
    assert not (tmp_path / "index.html").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_run_report(tmp_path / "missing")


def test_folder_of_unreadable_images_is_an_error_that_names_them(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match=r"(?s)no images with diffusers-attr metadata in .*plain\.png: plain\.png carries no"):
        write_run_report(tmp_path)


def test_corrupted_sidecars_and_images_without_metadata_are_listed_as_skipped(run_copy):
    # image-000: metadata embedded in the PNG, sidecar corrupted -> shown, the sidecar listed
    (run_copy / "image-000.attribution.json").write_text('{"format": "diffusers-attr", "top": [')
    # image-001: metadata stripped from the PNG and sidecar corrupted -> skipped, both listed
    with Image.open(run_copy / "image-001.png") as image:
        image.copy().save(run_copy / "image-001.png")
    (run_copy / "image-001.attribution.json").write_bytes(b"\xff\xfe not json")
    # a PNG that is not an attributed image, a truncated PNG and a sidecar without its image
    Image.new("L", (8, 8)).save(run_copy / "other.png")
    (run_copy / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (run_copy / "lonely.attribution.json").write_text("{}")
    # a picture of an image of a kind the report does not know is neither an image nor skipped
    Image.new("RGB", (8, 8)).save(run_copy / "image-000.extra.png")

    folder = scan_run(run_copy)
    assert [image.path.name for image in folder.images] == ["image-000.png"]
    skipped = {item.path.name: item.reason for item in folder.skipped}
    assert set(skipped) == {
        "image-000.attribution.json", "image-001.attribution.json", "image-001.png",
        "other.png", "broken.png", "lonely.attribution.json",
    }
    assert "corrupted sidecar" in skipped["image-000.attribution.json"]
    assert "embedded in image-000.png was used" in skipped["image-000.attribution.json"]
    assert "not a readable PNG" in skipped["broken.png"]
    # the pictures of the skipped image-001 are not mistaken for generated images
    assert not any(name.startswith("image-001.") and name.endswith("-1.png") for name in skipped)

    page = write_run_report(run_copy).read_text(encoding="utf-8")
    assert _parse(page).cards == 1
    section = page[page.index('id="skipped"'):]
    for name in skipped:
        assert name in section
    assert "6 files could not be used" in page


def test_metadata_from_the_sidecar_when_the_png_has_none(run_copy):
    with Image.open(run_copy / "image-001.png") as image:
        image.copy().save(run_copy / "image-001.png")
    folder = scan_run(run_copy)
    assert [image.path.name for image in folder.images] == ["image-000.png", "image-001.png"]
    assert "image-001.attribution.json" in folder.images[1].note
    assert not folder.skipped


def test_missing_pictures_are_reported_not_linked(run_copy):
    for name in ("image-000.heatmap-1.png", "image-000.source-2.png", "image-000.collage.png", "image-000.train-3.png"):
        (run_copy / name).unlink()
    page = write_run_report(run_copy).read_text(encoding="utf-8")
    parsed = _parse(page)
    for url in parsed.urls:
        if not url.startswith("#"):
            assert (run_copy / unquote(url)).is_file(), url
    assert "image-000.heatmap-1.png is missing from this folder" in page
    assert "image-000.source-2.png is missing from this folder" in page
    assert "image-000.collage.png is missing from this folder" in page
    assert "no thumbnail" in page
    # rewriting replaces the report in place
    assert write_run_report(run_copy).read_text(encoding="utf-8") == page


# ------------------------------------------------------------------------------------ the browser


def _panel(browser: Chromium, card: int) -> dict:
    return browser.evaluate(
        f"(() => {{ const p = document.querySelectorAll('.card')[{card}].querySelector('.detail');"
        " const src = s => { const i = p.querySelector(`[data-slot=${s}] img`); return i ? i.getAttribute('src') : null; };"
        " const note = s => { const n = p.querySelector(`[data-slot=${s}] .missing`); return n ? n.textContent : null; };"
        " return {title: p.querySelector('.detail-title').textContent, query: src('query'), source: src('source'),"
        " queryNote: note('query'), sourceNote: note('source')}; })()"
    )


def test_report_in_headless_chromium(run_dir, tmp_path):
    binary = chromium_binary()
    report = write_run_report(run_dir)
    meta = read_attribution(run_dir / "image-000.png")
    browser = Chromium(binary, Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
    try:
        open_page(browser, report.as_uri())

        assert browser.evaluate("document.querySelectorAll('article.card').length") == 2
        images = browser.evaluate("[...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert len(images) == 2 * (3 + N_TRAIN + 2)  # output, heatmap, collage + thumbnails + two panel maps
        assert [src for src, complete, width in images if not (complete and width > 0)] == []
        assert browser.evaluate("window.__pwned === undefined")

        first = _panel(browser, 0)
        assert first["title"] == f"#1 · {meta['top'][0]['id']}"
        assert (first["query"], first["source"]) == ("image-000.heatmap-1.png", "image-000.source-1.png")

        # hovering the second item shows its maps
        x, y = center(browser, ".card:nth-of-type(1) .item[data-rank='2']")
        browser.page("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        hovered = _panel(browser, 0)
        assert (hovered["query"], hovered["source"]) == ("image-000.heatmap-2.png", "image-000.source-2.png")
        assert hovered["title"] == f"#2 · {meta['top'][1]['id']}"

        # clicking the third pins it; moving the mouse away keeps it
        x, y = center(browser, ".card:nth-of-type(1) .item[data-rank='3']")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            browser.page("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
        browser.page("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 5, "y": 5})
        assert browser.evaluate("document.querySelector('.card .item[data-rank=\"3\"]').getAttribute('aria-pressed')") == "true"
        pinned = _panel(browser, 0)
        assert (pinned["query"], pinned["source"]) == ("image-000.heatmap-3.png", "image-000.source-3.png")

        # keyboard: Tab moves focus to the next item, which shows in the panel; an item past M says so
        browser.page("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9})
        browser.page("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9})
        assert browser.evaluate("document.activeElement.dataset.rank") == "4"
        beyond = _panel(browser, 0)
        assert beyond["query"] is None and beyond["source"] is None
        assert f"top {MAPS} items" in beyond["queryNote"]
        # Enter pins the focused item; the other card is untouched
        browser.page("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"})
        browser.page("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
        assert browser.evaluate("document.querySelector('.card .item[data-rank=\"4\"]').getAttribute('aria-pressed')") == "true"
        assert _panel(browser, 1)["query"] == "image-001.heatmap-1.png"
        assert browser.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")

        shot = browser.page("Page.captureScreenshot", {"format": "png"})
        (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))
        with Image.open(tmp_path / "report.png") as picture:
            assert picture.size == (1280, 900)
        time.sleep(0.1)
        browser.evaluate("1")  # drain pending events
        assert browser.errors() == []
    finally:
        browser.close()
