"""Rewrite the README's pictures from what ``diffusers-attr demo`` produces.

    python docs/readme_images.py            # needs the test extra and a chromium binary

Runs the demo (its defaults) into a temporary folder, copies its ``image-003.card.png`` to
``docs/images/demo_card.png`` and takes a screenshot of its report (``index.html`` in headless Chromium,
1280 px wide, the header and the first image) as ``docs/images/report_screenshot.png``.
"""

from __future__ import annotations

import base64
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import Chromium, chromium_binary, open_page  # noqa: E402  (tests/browser.py)
from diffusers_attr.cli import main as cli  # noqa: E402

CARD = "image-003.card.png"


def write_readme_images(images: Path = ROOT / "docs" / "images") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        if cli(["demo", "--out", str(demo)]) != 0:
            raise SystemExit("the demo failed")
        shutil.copy(demo / CARD, images / "demo_card.png")
        browser = Chromium(chromium_binary(), Path(tmp) / "chromium")
        try:
            open_page(browser, (demo / "index.html").as_uri(), width=1280, height=1000)
            bottom = browser.evaluate("document.querySelector('article.card').getBoundingClientRect().bottom")
            clip = {"x": 0, "y": 0, "width": 1280, "height": min(int(bottom) + 16, 1000), "scale": 1}
            shot = browser.page("Page.captureScreenshot", {"format": "png", "clip": clip})
        finally:
            browser.close()
        (images / "report_screenshot.png").write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {images / 'demo_card.png'} and {images / 'report_screenshot.png'}")


if __name__ == "__main__":
    write_readme_images()
