"""Headless Chromium driven over the Chrome DevTools Protocol, for tests of HTML reports.

``Chromium`` starts Debian's ``chromium`` with a throw-away profile, attaches to one page (flat
session) and offers ``send`` / ``page`` (CDP commands), ``wait_for`` (events), ``evaluate`` (JavaScript)
and ``errors`` (console errors, uncaught exceptions, dialogs, failed loads logged as errors). It needs
``websocket-client`` (the ``test`` extra). ``chromium_binary()`` returns the binary or skips the test;
``open_page(browser, url)`` enables the domains, sets a 1280x900 viewport, loads ``url`` and waits for
its images.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def chromium_binary() -> str:
    """The ``chromium`` on PATH, or skip the calling test."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium chromium-driver)")
    return binary


class Chromium:
    """Headless Chromium driven over the Chrome DevTools Protocol (one page, flat session)."""

    def __init__(self, binary: str, profile: Path):
        import websocket  # websocket-client, in the `test` extra

        self.process = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start (exit code {self.process.returncode})")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.socket = None
        self.next_id = 0
        self.events: list[dict] = []
        try:
            self.socket = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30, suppress_origin=True)
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        except BaseException:
            self.close()
            raise

    def send(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, params: dict | None = None) -> dict:
        return self.send(method, params, session=True)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(json.loads(self.socket.recv()))
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[dict]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown" or method == "Page.javascriptDialogOpening" or method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert") or method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(event)
        return found

    def close(self):
        try:
            if getattr(self, "socket", None) is not None:
                self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def open_page(browser: Chromium, url: str, *, width: int = 1280, height: int = 900) -> None:
    """Enable the Runtime, Page and Log domains, set the viewport, load ``url`` and decode its images."""
    for domain in ("Runtime", "Page", "Log"):
        browser.page(f"{domain}.enable")
    browser.page("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    browser.page("Page.navigate", {"url": url})
    browser.wait_for("Page.loadEventFired")
    browser.evaluate("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")


def center(browser: Chromium, selector: str) -> tuple[float, float]:
    """Scroll the element into view and return the viewport coordinates of its centre."""
    box = browser.evaluate(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
        " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    return box[0], box[1]


def click(browser: Chromium, selector: str) -> None:
    """A real mouse click (move, press, release) on the centre of the element."""
    x, y = center(browser, selector)
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        browser.page("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
