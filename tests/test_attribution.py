"""The pictures of one attribution on an image whose shape differs from the index's: maps cover
exactly the region that was attributed (the centre crop), in its aspect ratio, in the saved PNGs, the
summary card and both HTML reports."""

from __future__ import annotations

import base64
import io
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import Chromium, chromium_binary, open_page
from diffusers_attr import Attribution, AttributionIndex
from diffusers_attr.cli import main
from diffusers_attr.index.images import resize_center_crop
from diffusers_attr.render import CATEGORICAL
from diffusers_attr.render.card import GAP, TILE
from diffusers_attr.report import aggregate

PANEL = 200  # grey of the side panels, so that dimming them is visible
DIMMED = round(PANEL * 0.35)


@pytest.fixture(scope="module")
def wide_run(photo_folder, tmp_path_factory) -> dict:
    """A 384x128 image: the coffee photo (128x128 centre crop) between two grey panels, attributed on
    the command line against the five photos indexed at 32 px, then reported."""
    root = tmp_path_factory.mktemp("wide")
    index = root / "index"
    AttributionIndex.build(index, photo_folder, resolution=32, progress=False)
    wide = Image.new("RGB", (384, 128), (PANEL,) * 3)
    with Image.open(photo_folder / "coffee.png") as coffee:
        wide.paste(resize_center_crop(coffee.convert("RGB"), 128), (128, 0))
    wide.save(root / "wide.png")
    run = root / "run"
    assert main(["attribute", str(root / "wide.png"), "--index", str(index), "--out", str(run)]) == 0
    assert main(["report", str(run), "--index", str(index), "--html", str(root / "summary.html")]) == 0
    return {"run": run, "index": index, "summary": root / "summary.html"}


def test_the_attributed_region_is_the_centre_crop(wide_run):
    attribution = Attribution.load(wide_run["run"] / "wide.png")
    assert attribution.region == (128.0, 0.0, 256.0, 128.0)
    assert attribution.origin == "existing" and attribution.top[0].id == "coffee.png"


def test_maps_are_drawn_on_the_region_only(wide_run):
    attribution = Attribution.load(wide_run["run"] / "wide.png")
    image = np.asarray(attribution.image, dtype=np.int64)
    for picture in (attribution.heatmap(0), attribution.collage()):
        assert picture.size == (384, 128)
        pixels = np.asarray(picture, dtype=np.int64)
        for panel in (pixels[:, :128], pixels[:, 256:]):  # only dimmed: no heat, no collage colour
            assert (panel == DIMMED).all()
        assert np.abs(pixels[:, 128:256] - image[:, 128:256]).mean() > 5  # the map is drawn here
    assert attribution.source_heatmap(0).size == (128, 128)  # the item, square like the region


def test_saved_pictures_keep_the_aspect_ratio(wide_run):
    run = wide_run["run"]
    attribution = Attribution.load(run / "wide.png")
    with Image.open(run / "wide.heatmap-1.png") as heatmap, Image.open(run / "wide.source-1.png") as source:
        assert heatmap.width == 384 and heatmap.height > 128  # the picture at its own size, then the legend
        assert np.array_equal(np.asarray(heatmap.convert("RGB"))[:128], np.asarray(attribution.heatmap(0)))
        assert source.width == 256 and source.height > 256  # 128x128 region, enlarged 2x, then the legend
    with Image.open(run / "wide.collage.png") as collage:
        drawn = np.asarray(collage.convert("RGB"))[:128]
    assert not any(np.all(drawn[:, :128] == colour, axis=-1).any() for colour in CATEGORICAL)
    with Image.open(run / "wide.card.png") as card:
        tile = np.asarray(card.convert("RGB"))[GAP : GAP + TILE, GAP : GAP + TILE]
    band = round(TILE * 128 / 384)  # the 3:1 output letterboxed in its square tile
    top = (TILE - band) // 2
    assert (tile[: top - 1] == 255).all() and (tile[top + band + 1 :] == 255).all()
    assert not (tile[top + 2 : top + band - 2] == 255).all()


def test_summary_report_shows_the_region_in_its_shape(wide_run):
    summary = aggregate(wide_run["run"], index=AttributionIndex.load(wide_run["index"]))
    [flag] = summary.flags  # the middle of the image is a copy of the coffee photo
    assert Path(flag.output).name == "wide.png"
    sizes = {key: Image.open(io.BytesIO(data)).size for key, data in flag.pictures.items()}
    assert sizes == {"output": (128, 128), "source": (128, 128), "query_map": (128, 128), "source_map": (128, 128)}
    page = wide_run["summary"].read_text()
    embedded = [base64.b64decode(data) for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]
    assert flag.pictures["query_map"] in embedded


def test_run_report_in_a_browser_shows_the_maps_in_their_shape(wide_run, tmp_path):
    binary = chromium_binary()
    browser = Chromium(binary, Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
    try:
        open_page(browser, (wide_run["run"] / "index.html").as_uri())
        shown = browser.evaluate(
            "[...document.querySelectorAll('.views img, .maps img')].map(i => { const r = i.getBoundingClientRect();"
            " return [i.getAttribute('src'), i.naturalWidth, i.naturalHeight, r.width, r.height]; })"
        )
        assert browser.errors() == []
    finally:
        browser.close()
    by_name = {src: values for src, *values in shown}
    assert by_name["wide.png"][:2] == [384, 128]
    assert by_name["wide.heatmap-1.png"][0] == 384 and by_name["wide.source-1.png"][0] == 256
    for name, ratio in (("wide.heatmap-1.png", 3.0), ("wide.collage.png", 3.0), ("wide.source-1.png", 1.0)):
        natural_width, natural_height, width, height = by_name[name]
        assert natural_height > natural_width / ratio  # the file carries its legend below the picture ...
        assert width / height == pytest.approx(ratio, rel=0.02)  # ... the page shows the picture, in its shape
    assert "Existing image" in (wide_run["run"] / "index.html").read_text()
